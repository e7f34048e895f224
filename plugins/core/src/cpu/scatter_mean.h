// CPU scatter-mean: every input token is added, weighted by its size, to its output slot in float32;
// the outputs are then written densely with the token count T' as row stride.
#pragma once

#include "algm/math.h"

#include <algorithm>
#include <cstdint>

namespace algm::cpu
{

struct ScatterShape
{
    int32_t batch;
    int32_t tokens;    // T: input rows per image, also the row stride of the accumulators
    int32_t channels;
    int32_t outTokens; // T'
};

// `sizes` may be null (every input has size 1). `sums` [B, T, C] and `sizeSums` [B, T] are scratch.
template <typename Storage>
void writeScatterMean(Storage const* tokens, float const* sizes, int32_t const* slots, ScatterShape const& s,
    float* sums, float* sizeSums, Storage* merged, float* mergedSizes)
{
    int64_t const channels = s.channels;
    for (int64_t b = 0; b < s.batch; ++b)
    {
        float* imageSums = sums + b * s.tokens * channels;
        float* imageSizes = sizeSums + b * s.tokens;
        std::fill(imageSums, imageSums + s.outTokens * channels, 0.0f);
        std::fill(imageSizes, imageSizes + s.outTokens, 0.0f);
        for (int64_t t = 0; t < s.tokens; ++t)
        {
            int64_t const row = b * s.tokens + t;
            float const size = sizes ? sizes[row] : 1.0f;
            int64_t const slot = slots[row];
            Storage const* input = tokens + row * channels;
            float* sum = imageSums + slot * channels;
            for (int64_t c = 0; c < channels; ++c)
            {
                sum[c] = addProduct(sum[c], size, loadFloat(input[c]));
            }
            imageSizes[slot] += size;
        }
        for (int64_t t = 0; t < s.outTokens; ++t)
        {
            int64_t const outRow = b * s.outTokens + t;
            for (int64_t c = 0; c < channels; ++c)
            {
                merged[outRow * channels + c] = storeAs<Storage>(scatterMean(imageSums[t * channels + c], imageSizes[t]));
            }
            mergedSizes[outRow] = imageSizes[t];
        }
    }
}

} // namespace algm::cpu
