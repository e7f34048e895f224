// Launch helpers of the CUDA kernels: grid sizes for grid-stride loops and status checks.
#pragma once

#include "algm/kernels.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>

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

struct ZeroFill
{
    void* buffer;
    size_t bytes;
};

// Queues cudaMemsetAsync(0) of each buffer; the first error, if any.
inline cudaError_t zeroFillAsync(std::initializer_list<ZeroFill> buffers, cudaStream_t stream)
{
    for (ZeroFill const& fill : buffers)
    {
        cudaError_t const error = cudaMemsetAsync(fill.buffer, 0, fill.bytes, stream);
        if (error != cudaSuccess)
        {
            return error;
        }
    }
    return cudaSuccess;
}

// Clears a merge workspace's accumulators: per-image counters and the float32 scatter-mean sums of
// `tokenRows` (= batch x input tokens) rows. `Workspace` is LocalMergeWorkspace or GlobalMergeWorkspace.
template <typename Workspace>
cudaError_t clearAccumulatorsAsync(Workspace const& ws, int32_t batch, size_t tokenRows, int32_t channels,
    cudaStream_t stream)
{
    return zeroFillAsync({{ws.counts, batch * sizeof(int32_t)}, {ws.sums, tokenRows * channels * sizeof(float)},
                             {ws.sizeSums, tokenRows * sizeof(float)}},
        stream);
}

// Status of the work queued so far by a launcher (launch errors only: nothing is synchronised).
inline Status launchStatus()
{
    return cudaGetLastError() == cudaSuccess ? kSuccess : kCudaError;
}

} // namespace algm::cuda::detail
