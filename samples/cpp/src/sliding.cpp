#include "sliding.h"

#include "preprocess.h"
#include "resize.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace sample
{
namespace
{

// One crop [window x window] of `image` at (top, left).
RgbImage crop(RgbImage const& image, int top, int left, int window)
{
    RgbImage out;
    out.width = window;
    out.height = window;
    out.pixels.resize(static_cast<size_t>(window) * window * 3);
    for (int y = 0; y < window; ++y)
    {
        auto const* row = &image.pixels[(static_cast<size_t>(top + y) * image.width + left) * 3];
        std::copy(row, row + static_cast<size_t>(window) * 3, &out.pixels[static_cast<size_t>(y) * window * 3]);
    }
    return out;
}

// Source index pair and weight of output position `i` (torch's area_pixel_compute_source_index).
struct Tap
{
    int low;
    int high;
    float weight; // of `high`
};

std::vector<Tap> taps(int in, int out)
{
    std::vector<Tap> result(static_cast<size_t>(out));
    float const scale = static_cast<float>(in) / static_cast<float>(out);
    for (int i = 0; i < out; ++i)
    {
        float const source = std::max((static_cast<float>(i) + 0.5f) * scale - 0.5f, 0.0f);
        int const low = std::min(static_cast<int>(source), in - 1);
        result[static_cast<size_t>(i)] = Tap{low, std::min(low + 1, in - 1), source - static_cast<float>(low)};
    }
    return result;
}

} // namespace

std::vector<int> windowAnchors(int length, int window, int stride)
{
    std::vector<int> anchors;
    for (int position = 0; position < length - window; position += stride)
    {
        anchors.push_back(position);
    }
    anchors.push_back(length - window);
    return anchors;
}

std::pair<int, int> slidingSize(int height, int width, int imSize, int window)
{
    double const scale
        = std::min(static_cast<double>(imSize) / std::min(height, width), 4.0 * imSize / std::max(height, width));
    int resizedHeight = static_cast<int>(height * scale + 0.5);
    int resizedWidth = static_cast<int>(width * scale + 0.5);
    if (std::min(resizedHeight, resizedWidth) < window)
    {
        if (resizedHeight < resizedWidth)
        {
            resizedWidth = static_cast<int>(static_cast<double>(resizedWidth) / resizedHeight * window);
            resizedHeight = window;
        }
        else
        {
            resizedHeight = static_cast<int>(static_cast<double>(resizedHeight) / resizedWidth * window);
            resizedWidth = window;
        }
    }
    if (static_cast<long long>(resizedHeight) * resizedWidth > kMaxResizedPixels)
    {
        throw std::invalid_argument("a " + std::to_string(height) + "x" + std::to_string(width)
            + " image would be resized to " + std::to_string(resizedHeight) + "x" + std::to_string(resizedWidth)
            + " for the sliding window, above the " + std::to_string(kMaxResizedPixels >> 20)
            + " MP supported; crop or pad it");
    }
    return {resizedHeight, resizedWidth};
}

std::vector<float> resizePlanes(
    std::vector<float> const& planes, int channels, int height, int width, int outHeight, int outWidth)
{
    std::vector<Tap> const rows = taps(height, outHeight);
    std::vector<Tap> const cols = taps(width, outWidth);
    std::vector<float> out(static_cast<size_t>(channels) * outHeight * outWidth);
    for (int c = 0; c < channels; ++c)
    {
        float const* in = planes.data() + static_cast<size_t>(c) * height * width;
        float* target = out.data() + static_cast<size_t>(c) * outHeight * outWidth;
        for (int y = 0; y < outHeight; ++y)
        {
            Tap const r = rows[static_cast<size_t>(y)];
            float const* top = in + static_cast<size_t>(r.low) * width;
            float const* bottom = in + static_cast<size_t>(r.high) * width;
            for (int x = 0; x < outWidth; ++x)
            {
                Tap const t = cols[static_cast<size_t>(x)];
                float const upper = (1.0f - t.weight) * top[t.low] + t.weight * top[t.high];
                float const lower = (1.0f - t.weight) * bottom[t.low] + t.weight * bottom[t.high];
                target[static_cast<size_t>(y) * outWidth + x] = (1.0f - r.weight) * upper + r.weight * lower;
            }
        }
    }
    return out;
}

LabelMap slidingLabels(
    Backend& backend, RgbImage const& image, std::vector<float>& latenciesMs, std::vector<int64_t>& tokenCounts)
{
    Deployment const& model = backend.deployment();
    int const window = model.height;
    int const classes = static_cast<int>(model.classNames.size());
    auto const [height, width] = slidingSize(image.height, image.width, model.imSize, window);
    RgbImage const resized = resizeBilinear(image, width, height);
    size_t const plane = static_cast<size_t>(height) * width;
    std::vector<float> sums(static_cast<size_t>(classes) * plane, 0.0f);
    std::vector<int32_t> counts(plane, 0);
    for (int top : windowAnchors(height, window, model.windowStride))
    {
        for (int left : windowAnchors(width, window, model.windowStride))
        {
            Inference const inference
                = backend.run(normalize(crop(resized, top, left, window), model.mean, model.std), 0, 1, true);
            latenciesMs.insert(latenciesMs.end(), inference.latenciesMs.begin(), inference.latenciesMs.end());
            tokenCounts = inference.tokenCounts;
            std::vector<float> const logits = inference.scores.empty()
                ? inference.logits
                : resizePlanes(
                      inference.scores, classes, inference.scoresHeight, inference.scoresWidth, window, window);
            if (logits.size() != static_cast<size_t>(classes) * window * window)
            {
                throw std::runtime_error("the model's class output does not have one plane per class name");
            }
            for (int c = 0; c < classes; ++c)
            {
                for (int y = 0; y < window; ++y)
                {
                    float const* source = &logits[(static_cast<size_t>(c) * window + y) * window];
                    float* target = &sums[static_cast<size_t>(c) * plane + static_cast<size_t>(top + y) * width + left];
                    for (int x = 0; x < window; ++x)
                    {
                        target[x] += source[x];
                    }
                }
            }
            for (int y = 0; y < window; ++y)
            {
                for (int x = 0; x < window; ++x)
                {
                    ++counts[static_cast<size_t>(top + y) * width + left + x];
                }
            }
        }
    }
    for (int c = 0; c < classes; ++c)
    {
        for (size_t pixel = 0; pixel < plane; ++pixel)
        {
            sums[static_cast<size_t>(c) * plane + pixel] /= static_cast<float>(counts[pixel]);
        }
    }
    return argmaxClasses(
        resizePlanes(sums, classes, height, width, image.height, image.width), classes, image.height, image.width);
}

} // namespace sample
