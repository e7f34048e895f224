// Launch helpers of the CUDA kernels: grid sizes for grid-stride loops and status checks.
#pragma once

#include "algm/kernels.h"
#include "../common/workspace_layout.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace algm::cuda::detail
{

constexpr int kThreads = 256;

// Blocks of kThreads for a grid-stride loop over `items` (capped: the loop covers the rest).
inline unsigned gridFor(int64_t items)
{
    int64_t const blocks = (items + kThreads - 1) / kThreads;
    return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, int64_t{1} << 16));
}

// First index and stride of the calling thread in a grid-stride loop.
__device__ inline int64_t threadIndex()
{
    return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__device__ inline int64_t threadCount()
{
    return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// Clears a merge's per-image counters (the only accumulators: the scatter-mean sums without atomics).
inline cudaError_t clearCountersAsync(MergeScratch const& scratch, int32_t batch, cudaStream_t stream)
{
    return cudaMemsetAsync(scratch.counts, 0, batch * sizeof(int32_t), stream);
}

// Status of the work queued so far by a launcher (launch errors only: nothing is synchronised).
inline Status launchStatus()
{
    return cudaGetLastError() == cudaSuccess ? kSuccess : kCudaError;
}

} // namespace algm::cuda::detail
