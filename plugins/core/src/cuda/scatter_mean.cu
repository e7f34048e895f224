#include "algm/math.h"
#include "launch.cuh"
#include "scatter_mean.cuh"

#include <cuda_fp16.h>

namespace algm::cuda::detail
{
namespace
{

__global__ void scatterOrderKernel(int32_t const* slots, ScatterShape shape, int32_t* order, int32_t* ends)
{
    int64_t const total = static_cast<int64_t>(shape.batch) * shape.tokens;
    for (int64_t i = threadIndex(); i < total; i += threadCount())
    {
        int64_t const image = i / shape.tokens;
        int32_t const t = static_cast<int32_t>(i - image * shape.tokens);
        int32_t const* imageSlots = slots + image * shape.tokens;
        int32_t const slot = imageSlots[t];
        int32_t smaller = 0; // tokens of earlier slots
        int32_t before = 0;  // earlier tokens of this slot
        int32_t after = 0;   // later tokens of this slot
        for (int32_t other = 0; other < shape.tokens; ++other)
        {
            int32_t const otherSlot = imageSlots[other];
            smaller += otherSlot < slot ? 1 : 0;
            before += otherSlot == slot && other < t ? 1 : 0;
            after += otherSlot == slot && other > t ? 1 : 0;
        }
        int32_t const position = smaller + before;
        order[image * shape.tokens + position] = t;
        if (after == 0)
        {
            ends[image * shape.tokens + slot] = position + 1;
        }
    }
}

// Runs over the upper bound T rows per image; rows at or past T' are skipped, rows at or past the image's
// own T'_b are padding (no members: 0, size 0; their `ends` entries are never written).
template <typename Storage>
__global__ void scatterMeanKernel(Storage const* tokens, float const* sizes, int32_t const* order, int32_t const* ends,
    int32_t const* imageTokens, int32_t const* outTokensOnDevice, ScatterShape shape, Storage* merged,
    float* mergedSizes)
{
    int64_t const outTokens = *outTokensOnDevice;
    int64_t const total = static_cast<int64_t>(shape.batch) * shape.tokens * shape.channels;
    for (int64_t i = threadIndex(); i < total; i += threadCount())
    {
        int64_t const row = i / shape.channels;
        int64_t const channel = i - row * shape.channels;
        int64_t const image = row / shape.tokens;
        int64_t const slot = row - image * shape.tokens;
        if (slot >= outTokens)
        {
            continue;
        }
        int32_t const* imageEnds = ends + image * shape.tokens;
        bool const real = slot < imageTokens[image];
        int32_t const begin = real && slot > 0 ? imageEnds[slot - 1] : 0;
        float sizeSum = 0.0f;
        float const mean = slotMean(tokens + image * shape.tokens * shape.channels,
            sizes ? sizes + image * shape.tokens : nullptr, order + image * shape.tokens + begin,
            real ? imageEnds[slot] - begin : 0, shape.channels, channel, sizeSum);
        int64_t const outRow = image * outTokens + slot;
        merged[outRow * shape.channels + channel] = storeAs<Storage>(mean);
        if (channel == 0)
        {
            mergedSizes[outRow] = sizeSum;
        }
    }
}

} // namespace

void launchScatterOrder(
    int32_t const* slots, ScatterShape const& shape, int32_t* order, int32_t* ends, cudaStream_t stream)
{
    scatterOrderKernel<<<gridFor(static_cast<int64_t>(shape.batch) * shape.tokens), kThreads, 0, stream>>>(
        slots, shape, order, ends);
}

template <typename Storage>
void launchScatterMean(Storage const* tokens, float const* sizes, int32_t const* order, int32_t const* ends,
    int32_t const* imageTokens, int32_t const* outTokens, ScatterShape const& shape, Storage* merged,
    float* mergedSizes, cudaStream_t stream)
{
    int64_t const elements = static_cast<int64_t>(shape.batch) * shape.tokens * shape.channels;
    scatterMeanKernel<<<gridFor(elements), kThreads, 0, stream>>>(
        tokens, sizes, order, ends, imageTokens, outTokens, shape, merged, mergedSizes);
}

template void launchScatterMean<float>(float const*, float const*, int32_t const*, int32_t const*, int32_t const*,
    int32_t const*, ScatterShape const&, float*, float*, cudaStream_t);
template void launchScatterMean<__half>(__half const*, float const*, int32_t const*, int32_t const*, int32_t const*,
    int32_t const*, ScatterShape const&, __half*, float*, cudaStream_t);

} // namespace algm::cuda::detail
