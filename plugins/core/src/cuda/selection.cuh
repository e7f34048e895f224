// Device-side selection steps shared by both merges: the batch minimum r and T', and the ranks.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace algm::cuda::detail
{

// merges[0] = r = min(counts[0..batch)); merges[1] = T' = tokens - r * removedPerMerge; *numTokens = T'.
void launchBatchMerges(int32_t const* counts, int32_t batch, int32_t tokens, int32_t removedPerMerge,
    int32_t* merges, int64_t* numTokens, cudaStream_t stream);

// ranks[b, i] = stable descending rank of values[b, i] within image b (one thread per element).
void launchRanks(float const* values, int32_t batch, int32_t perImage, int32_t* ranks, cudaStream_t stream);

} // namespace algm::cuda::detail
