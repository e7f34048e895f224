// Device-side selection steps shared by both merges: the batch rule's r_b, T'_b and T', and the ranks.
#pragma once

#include "../common/workspace_layout.h"

#include <cuda_runtime_api.h>

#include <cstdint>

namespace algm::cuda::detail
{

// algm::decideMerges on the device (one thread): scratch.imageMerges[b] = r_b, scratch.imageTokens[b] = T'_b
// from scratch.counts (and scratch.inputTokens when `realInputs`, else every image has `tokens`);
// *scratch.outTokens = *numTokens = T' = max_b T'_b.
void launchMergeDecision(MergeScratch const& scratch, bool realInputs, int32_t tokens, int32_t batch,
    int32_t removedPerMerge, bool perImage, int64_t* numTokens, cudaStream_t stream);

// ranks[b, i] = stable descending rank of values[b, i] within image b (one thread per element).
void launchRanks(float const* values, int32_t batch, int32_t elements, int32_t* ranks, cudaStream_t stream);

} // namespace algm::cuda::detail
