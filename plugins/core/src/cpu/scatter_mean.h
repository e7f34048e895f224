// CPU scatter-mean: a stable counting sort groups the input tokens by output slot (ascending input order
// inside each slot), then each slot's members are summed in that order (algm::slotMean, shared with CUDA);
// the outputs are written densely with the token count T' as row stride.
#pragma once

#include "algm/math.h"

#include <algorithm>
#include <cstdint>

namespace algm::cpu
{

struct ScatterShape
{
    int32_t batch;
    int32_t tokens; // T: input rows per image
    int32_t channels;
    int32_t outTokens; // T'
};

// `sizes` may be null (every input has size 1). `order` [B, T] and `ends` [B, T] are scratch: the input
// rows sorted by slot and the end of each slot's run in `order` (the layout the CUDA build uses too).
template <typename Storage>
void writeScatterMean(Storage const* tokens, float const* sizes, int32_t const* slots, ScatterShape const& s,
    int32_t* order, int32_t* ends, Storage* merged, float* mergedSizes)
{
    int64_t const channels = s.channels;
    for (int64_t b = 0; b < s.batch; ++b)
    {
        int32_t const* imageSlots = slots + b * s.tokens;
        int32_t* imageOrder = order + b * s.tokens;
        int32_t* imageEnds = ends + b * s.tokens;
        std::fill(imageEnds, imageEnds + s.outTokens, 0);
        for (int32_t t = 0; t < s.tokens; ++t)
        {
            ++imageEnds[imageSlots[t]];
        }
        for (int32_t slot = 0, start = 0; slot < s.outTokens; ++slot) // counts -> starts
        {
            int32_t const count = imageEnds[slot];
            imageEnds[slot] = start;
            start += count;
        }
        for (int32_t t = 0; t < s.tokens; ++t) // starts -> ends
        {
            imageOrder[imageEnds[imageSlots[t]]++] = t;
        }
        Storage const* imageTokens = tokens + b * s.tokens * channels;
        float const* imageSizes = sizes ? sizes + b * s.tokens : nullptr;
        for (int32_t t = 0; t < s.outTokens; ++t)
        {
            int32_t const begin = t > 0 ? imageEnds[t - 1] : 0;
            int64_t const outRow = b * s.outTokens + t;
            float sizeSum = 0.0f;
            for (int64_t c = 0; c < channels; ++c)
            {
                merged[outRow * channels + c] = storeAs<Storage>(
                    slotMean(imageTokens, imageSizes, imageOrder + begin, imageEnds[t] - begin, channels, c, sizeSum));
            }
            mergedSizes[outRow] = sizeSum;
        }
    }
}

} // namespace algm::cpu
