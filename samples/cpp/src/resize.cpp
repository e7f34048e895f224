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
// PIL's fixed-point precision for 8-bit images: 32 bits minus 8 for the pixel and 2 for headroom.
constexpr int kPrecisionBits = 32 - 8 - 2;

// The taps of one output pixel: input index `first` onwards, fixed-point weights summing to ~1 << 22.
struct Taps
{
    int first = 0;
    std::vector<int32_t> weights;
};

double triangle(double x)
{
    x = std::fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

// For each of `outSize` output positions, the input taps and weights along one axis of length `inSize`.
std::vector<Taps> computeTaps(int inSize, int outSize)
{
    double const scale = static_cast<double>(inSize) / outSize;
    double const filterScale = std::max(scale, 1.0);     // widen the filter when shrinking
    double const support = 1.0 * filterScale;            // the triangle's support is 1
    double const inverseFilterScale = 1.0 / filterScale; // PIL multiplies by it (bit-exact weights)
    std::vector<Taps> taps(static_cast<size_t>(outSize));
    for (int out = 0; out < outSize; ++out)
    {
        double const center = (out + 0.5) * scale;
        int const first = std::max(static_cast<int>(center - support + 0.5), 0);
        int const last = std::min(static_cast<int>(center + support + 0.5), inSize);
        std::vector<double> weights;
        double total = 0.0;
        for (int in = first; in < last; ++in)
        {
            double const w = triangle((in - center + 0.5) * inverseFilterScale);
            weights.push_back(w);
            total += w;
        }
        Taps& t = taps[static_cast<size_t>(out)];
        t.first = first;
        for (double w : weights)
        {
            double const normalized = total != 0.0 ? w / total : 0.0;
            double const fixed = normalized * (1 << kPrecisionBits);
            t.weights.push_back(static_cast<int32_t>(fixed < 0 ? fixed - 0.5 : fixed + 0.5));
        }
    }
    return taps;
}

uint8_t clip8(int64_t accumulator)
{
    int64_t const value = accumulator >> kPrecisionBits;
    return static_cast<uint8_t>(std::clamp<int64_t>(value, 0, 255));
}

// One pass along x (horizontal) or y: `taps` has one entry per output position on that axis.
RgbImage resample(RgbImage const& in, std::vector<Taps> const& taps, bool horizontal)
{
    RgbImage out;
    out.width = horizontal ? static_cast<int>(taps.size()) : in.width;
    out.height = horizontal ? in.height : static_cast<int>(taps.size());
    out.pixels.resize(static_cast<size_t>(out.width) * out.height * 3);
    for (int y = 0; y < out.height; ++y)
    {
        for (int x = 0; x < out.width; ++x)
        {
            Taps const& t = taps[static_cast<size_t>(horizontal ? x : y)];
            for (int c = 0; c < 3; ++c)
            {
                int64_t accumulator = int64_t{1} << (kPrecisionBits - 1); // rounds the final shift
                for (size_t k = 0; k < t.weights.size(); ++k)
                {
                    int const sx = horizontal ? t.first + static_cast<int>(k) : x;
                    int const sy = horizontal ? y : t.first + static_cast<int>(k);
                    size_t const index = (static_cast<size_t>(sy) * in.width + sx) * 3 + c;
                    accumulator += int64_t{in.pixels[index]} * t.weights[k];
                }
                out.pixels[(static_cast<size_t>(y) * out.width + x) * 3 + c] = clip8(accumulator);
            }
        }
    }
    return out;
}
} // namespace

RgbImage resizeBilinear(RgbImage const& image, int width, int height)
{
    RgbImage result = image;
    if (width != image.width)
    {
        result = resample(result, computeTaps(image.width, width), true);
    }
    if (height != image.height)
    {
        result = resample(result, computeTaps(image.height, height), false);
    }
    return result;
}

} // namespace sample
