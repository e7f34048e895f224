#include "preprocess.h"

#include <cstddef>

namespace sample
{

std::vector<float> normalize(RgbImage const& image, std::array<float, 3> const& mean, std::array<float, 3> const& std)
{
    size_t const plane = static_cast<size_t>(image.width) * image.height;
    std::vector<float> chw(plane * 3);
    for (size_t pixel = 0; pixel < plane; ++pixel)
    {
        for (size_t c = 0; c < 3; ++c)
        {
            // Same float32 operations, in the same order, as the numpy code.
            float const scaled = static_cast<float>(image.pixels[pixel * 3 + c]) / 255.0F;
            chw[c * plane + pixel] = (scaled - mean[c]) / std[c];
        }
    }
    return chw;
}

} // namespace sample
