#include "labels.h"

#include <algorithm>
#include <cstddef>

namespace sample
{

LabelMap argmaxClasses(std::vector<float> const& logits, int classes, int height, int width)
{
    LabelMap map;
    map.width = width;
    map.height = height;
    size_t const plane = static_cast<size_t>(width) * height;
    map.labels.assign(plane, 0);
    std::vector<float> best(logits.begin(), logits.begin() + static_cast<std::ptrdiff_t>(plane));
    for (int k = 1; k < classes; ++k)
    {
        float const* scores = logits.data() + static_cast<size_t>(k) * plane;
        for (size_t pixel = 0; pixel < plane; ++pixel)
        {
            if (scores[pixel] > best[pixel])
            {
                best[pixel] = scores[pixel];
                map.labels[pixel] = k;
            }
        }
    }
    return map;
}

LabelMap resizeNearest(LabelMap const& map, int width, int height)
{
    LabelMap out;
    out.width = width;
    out.height = height;
    out.labels.resize(static_cast<size_t>(width) * height);
    double const scaleX = static_cast<double>(map.width) / width;
    double const scaleY = static_cast<double>(map.height) / height;
    for (int y = 0; y < height; ++y)
    {
        int const sy = std::min(static_cast<int>((y + 0.5) * scaleY), map.height - 1);
        for (int x = 0; x < width; ++x)
        {
            int const sx = std::min(static_cast<int>((x + 0.5) * scaleX), map.width - 1);
            out.labels[static_cast<size_t>(y) * width + x] = map.labels[static_cast<size_t>(sy) * map.width + sx];
        }
    }
    return out;
}

std::vector<uint8_t> palette(int classes)
{
    // Bits 0, 1, 2 of the class index go to the top bit of R, G, B; bits 3, 4, 5 to the next; and so on.
    std::vector<uint8_t> colours(static_cast<size_t>(classes) * 3, 0);
    for (int index = 0; index < classes; ++index)
    {
        uint32_t label = static_cast<uint32_t>(index);
        for (int shift = 7; shift >= 0 && label != 0; --shift, label >>= 3)
        {
            for (int c = 0; c < 3; ++c)
            {
                colours[static_cast<size_t>(index) * 3 + static_cast<size_t>(c)]
                    |= static_cast<uint8_t>(((label >> c) & 1U) << shift);
            }
        }
    }
    return colours;
}

std::vector<int64_t> classHistogram(LabelMap const& map, int classes)
{
    std::vector<int64_t> counts(static_cast<size_t>(classes), 0);
    for (int32_t label : map.labels)
    {
        if (label >= 0 && label < classes)
        {
            ++counts[static_cast<size_t>(label)];
        }
    }
    return counts;
}

} // namespace sample
