#include "algm/math.h"
#include "launch.cuh"
#include "selection.cuh"

namespace algm::cuda::detail
{
namespace
{

// A single thread: the batch is small and this keeps the result on the device (no host sync).
__global__ void mergeDecisionKernel(MergeScratch scratch, bool realInputs, int32_t tokens, int32_t batch,
    int32_t removedPerMerge, bool perImage, int64_t* numTokens)
{
    int32_t const longest = decideMerges(scratch.counts, realInputs ? scratch.inputTokens : nullptr, tokens, batch,
        removedPerMerge, perImage, scratch.imageMerges, scratch.imageTokens);
    *scratch.outTokens = longest;
    *numTokens = longest;
}

// O(n) per element, O(n^2) per image: fine for the few thousand windows or tokens of an image.
__global__ void rankKernel(float const* values, int32_t batch, int32_t elements, int32_t* ranks)
{
    int64_t const total = static_cast<int64_t>(batch) * elements;
    for (int64_t i = threadIndex(); i < total; i += threadCount())
    {
        int64_t const image = i / elements;
        ranks[i] = stableDescendingRank(values + image * elements, elements, static_cast<int>(i - image * elements));
    }
}

} // namespace

void launchMergeDecision(MergeScratch const& scratch, bool realInputs, int32_t tokens, int32_t batch,
    int32_t removedPerMerge, bool perImage, int64_t* numTokens, cudaStream_t stream)
{
    mergeDecisionKernel<<<1, 1, 0, stream>>>(scratch, realInputs, tokens, batch, removedPerMerge, perImage, numTokens);
}

void launchRanks(float const* values, int32_t batch, int32_t elements, int32_t* ranks, cudaStream_t stream)
{
    rankKernel<<<gridFor(static_cast<int64_t>(batch) * elements), kThreads, 0, stream>>>(
        values, batch, elements, ranks);
}

} // namespace algm::cuda::detail
