// Segmenter's sliding-window inference (docs/outputs.md "Sliding window"), the full chain: resize keeping the
// aspect ratio, windows flush with the borders, per-window class logits averaged where windows overlap,
// bilinear resize to the image's own size, argmax.
#pragma once

#include "backend.h"
#include "image.h"
#include "labels.h"

#include <vector>

namespace sample
{

// Window anchors along an axis of `length` pixels: 0, stride, 2*stride, ... while < length - window, then
// length - window (one anchor when length == window).
std::vector<int> windowAnchors(int length, int window, int stride);

// Largest image the windows are cut from, as algm_export.runtime.sliding.MAX_RESIZED_PIXELS (16 MP): fitting a
// thin image's short side to the window undoes the long-side cap (1x2000 would become 512x1,048,576).
constexpr long long kMaxResizedPixels = 16LL << 20;

// Size (height, width) the image is resized to before the windows: short side im_size, long side at most
// 4*im_size, then short side at least the window. std::invalid_argument above kMaxResizedPixels.
std::pair<int, int> slidingSize(int height, int width, int imSize, int window);

// Bilinear resize of `channels` planes [channels, height, width] as torch's F.interpolate(mode="bilinear",
// align_corners=False): half-pixel centres, edge clamp, no antialiasing.
std::vector<float> resizePlanes(
    std::vector<float> const& planes, int channels, int height, int width, int outHeight, int outWidth);

// Labels of `image` at its own size by sliding windows of the backend's input size. `latenciesMs` receives
// one latency per window run.
LabelMap slidingLabels(
    Backend& backend, RgbImage const& image, std::vector<float>& latenciesMs, std::vector<int64_t>& tokenCounts);

} // namespace sample
