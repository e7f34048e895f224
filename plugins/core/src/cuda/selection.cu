#include "algm/math.h"
#include "launch.cuh"
#include "selection.cuh"

namespace algm::cuda::detail
{
namespace
{

// A single thread: the batch is small and this keeps the result on the device (no host sync).
__global__ void batchMergesKernel(int32_t const* counts, int32_t batch, int32_t tokens, int32_t removedPerMerge,
    int32_t* merges, int64_t* numTokens)
{
    int32_t minimum = counts[0];
    for (int32_t b = 1; b < batch; ++b)
    {
        minimum = min(minimum, counts[b]);
    }
    merges[0] = minimum;
    merges[1] = tokensAfterMerges(tokens, minimum, removedPerMerge);
    *numTokens = merges[1];
}

// O(n) per element, O(n^2) per image: fine for the few thousand windows or tokens of an image.
__global__ void rankKernel(float const* values, int32_t batch, int32_t perImage, int32_t* ranks)
{
    int64_t const total = static_cast<int64_t>(batch) * perImage;
    for (int64_t i = threadIndex(); i < total; i += threadCount())
    {
        int64_t const image = i / perImage;
        ranks[i] = stableDescendingRank(values + image * perImage, perImage, static_cast<int>(i - image * perImage));
    }
}

} // namespace

void launchBatchMerges(int32_t const* counts, int32_t batch, int32_t tokens, int32_t removedPerMerge,
    int32_t* merges, int64_t* numTokens, cudaStream_t stream)
{
    batchMergesKernel<<<1, 1, 0, stream>>>(counts, batch, tokens, removedPerMerge, merges, numTokens);
}

void launchRanks(float const* values, int32_t batch, int32_t perImage, int32_t* ranks, cudaStream_t stream)
{
    rankKernel<<<gridFor(static_cast<int64_t>(batch) * perImage), kThreads, 0, stream>>>(
        values, batch, perImage, ranks);
}

} // namespace algm::cuda::detail
