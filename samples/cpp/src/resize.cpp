#include "resize.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace sample
{
namespace
{
// OpenCV's INTER_RESIZE_COEF_BITS: the two weights of an output pixel are integers summing to about 2048.
constexpr int kCoefficientBits = 11;

// The two source pixels of one output position along an axis, with their fixed-point weights.
struct Taps
{
    int first = 0;
    int second = 0;
    int32_t weight0 = 0;
    int32_t weight1 = 0;
};

// OpenCV's INTER_LINEAR taps: source position (i + 0.5) * scale - 0.5 in float, split into floor and fraction,
// weights round(w * 2048). With `clamp` (x axis) a position left of the first pixel or on/after the last one
// takes that pixel alone; along y the fraction is kept and only the row indices are clipped.
std::vector<Taps> computeTaps(int inSize, int outSize, bool clamp)
{
    double const scale = 1.0 / (static_cast<double>(outSize) / inSize); // OpenCV: 1 / inv_scale
    float const one = static_cast<float>(1 << kCoefficientBits);
    std::vector<Taps> taps(static_cast<size_t>(outSize));
    for (int out = 0; out < outSize; ++out)
    {
        float const position = static_cast<float>((out + 0.5) * scale - 0.5);
        int first = static_cast<int>(std::floor(position));
        float fraction = position - static_cast<float>(first);
        if (clamp && (first < 0 || first >= inSize - 1))
        {
            fraction = 0.0f;
            first = std::clamp(first, 0, inSize - 1);
        }
        Taps& t = taps[static_cast<size_t>(out)];
        t.first = std::clamp(first, 0, inSize - 1);
        t.second = std::clamp(first + 1, 0, inSize - 1);
        t.weight0 = static_cast<int32_t>(std::nearbyint((1.0f - fraction) * one)); // round half to even, as cvRound
        t.weight1 = static_cast<int32_t>(std::nearbyint(fraction * one));
    }
    return taps;
}
} // namespace

RgbImage resizeBilinear(RgbImage const& image, int width, int height)
{
    if (width == image.width && height == image.height)
    {
        return image;
    }
    std::vector<Taps> const rows = computeTaps(image.height, height, false);
    std::vector<Taps> const cols = computeTaps(image.width, width, true);
    // Horizontal pass of every source row, in integers (weights x 2048), kept >> 4 as OpenCV does before the
    // vertical pass.
    std::vector<int32_t> horizontal(static_cast<size_t>(image.height) * width * 3);
    for (int y = 0; y < image.height; ++y)
    {
        uint8_t const* in = image.pixels.data() + static_cast<size_t>(y) * image.width * 3;
        int32_t* out = horizontal.data() + static_cast<size_t>(y) * width * 3;
        for (int x = 0; x < width; ++x)
        {
            Taps const& t = cols[static_cast<size_t>(x)];
            for (int c = 0; c < 3; ++c)
            {
                int32_t const sum
                    = int32_t{in[t.first * 3 + c]} * t.weight0 + int32_t{in[t.second * 3 + c]} * t.weight1;
                out[x * 3 + c] = sum >> 4;
            }
        }
    }
    RgbImage result;
    result.width = width;
    result.height = height;
    result.pixels.resize(static_cast<size_t>(width) * height * 3);
    for (int y = 0; y < height; ++y)
    {
        Taps const& t = rows[static_cast<size_t>(y)];
        int32_t const* top = horizontal.data() + static_cast<size_t>(t.first) * width * 3;
        int32_t const* bottom = horizontal.data() + static_cast<size_t>(t.second) * width * 3;
        uint8_t* out = result.pixels.data() + static_cast<size_t>(y) * width * 3;
        for (int i = 0; i < width * 3; ++i)
        {
            // OpenCV's vertical pass for uint8: two 16-bit high multiplies, then a rounding shift by 2.
            int32_t const value = (((t.weight0 * top[i]) >> 16) + ((t.weight1 * bottom[i]) >> 16) + 2) >> 2;
            out[i] = static_cast<uint8_t>(std::clamp(value, 0, 255));
        }
    }
    return result;
}

} // namespace sample
