// Per-image counting and ranking loops shared by the CPU merges.
#pragma once

#include "algm/math.h"

#include <algorithm>
#include <cstdint>

namespace algm::cpu
{

// counts[b] = #{values[b, i] >= thresholds[b * thresholdStride]} over the `elements` values of each image
// (thresholdStride 0: one threshold for the batch).
inline void countAtLeast(float const* values, int32_t batch, int32_t elements, float const* thresholds,
    int32_t thresholdStride, int32_t* counts)
{
    for (int32_t b = 0; b < batch; ++b)
    {
        float const* image = values + static_cast<int64_t>(b) * elements;
        float const threshold = thresholds[static_cast<int64_t>(b) * thresholdStride];
        counts[b]
            = static_cast<int32_t>(std::count_if(image, image + elements, [&](float v) { return v >= threshold; }));
    }
}

// ranks[b, i] = stable descending rank of values[b, i] within image b.
inline void rankEachImage(float const* values, int32_t batch, int32_t elements, int32_t* ranks)
{
    for (int32_t b = 0; b < batch; ++b)
    {
        int64_t const offset = static_cast<int64_t>(b) * elements;
        for (int32_t i = 0; i < elements; ++i)
        {
            ranks[offset + i] = stableDescendingRank(values + offset, elements, i);
        }
    }
}

} // namespace algm::cpu
