// Per-image counting and ranking loops shared by the CPU merges.
#pragma once

#include "algm/math.h"

#include <algorithm>
#include <cstdint>

namespace algm::cpu
{

// counts[b] = #{values of image b >= threshold}; returns the batch minimum r.
inline int32_t countMergesForBatch(
    float const* values, int32_t batch, int32_t perImage, float threshold, int32_t* counts)
{
    for (int32_t b = 0; b < batch; ++b)
    {
        float const* image = values + static_cast<int64_t>(b) * perImage;
        counts[b] = static_cast<int32_t>(std::count_if(image, image + perImage, [&](float v) { return v >= threshold; }));
    }
    return *std::min_element(counts, counts + batch);
}

// ranks[b, i] = stable descending rank of values[b, i] within image b.
inline void rankEachImage(float const* values, int32_t batch, int32_t perImage, int32_t* ranks)
{
    for (int32_t b = 0; b < batch; ++b)
    {
        int64_t const offset = static_cast<int64_t>(b) * perImage;
        for (int32_t i = 0; i < perImage; ++i)
        {
            ranks[offset + i] = stableDescendingRank(values + offset, perImage, i);
        }
    }
}

} // namespace algm::cpu
