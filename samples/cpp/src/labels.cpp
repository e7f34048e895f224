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

RgbImage colorize(LabelMap const& map)
{
    RgbImage image;
    image.width = map.width;
    image.height = map.height;
    image.pixels.resize(map.labels.size() * 3);
    for (size_t pixel = 0; pixel < map.labels.size(); ++pixel)
    {
        // Bits 0, 1, 2 of the label go to the top bit of R, G, B; bits 3, 4, 5 to the next; and so on.
        uint32_t label = static_cast<uint32_t>(map.labels[pixel]);
        uint8_t rgb[3] = {0, 0, 0};
        for (int shift = 7; shift >= 0 && label != 0; --shift, label >>= 3)
        {
            for (int c = 0; c < 3; ++c)
            {
                rgb[c] = static_cast<uint8_t>(rgb[c] | (((label >> c) & 1U) << shift));
            }
        }
        for (int c = 0; c < 3; ++c)
        {
            image.pixels[pixel * 3 + static_cast<size_t>(c)] = rgb[c];
        }
    }
    return image;
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
