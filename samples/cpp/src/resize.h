// Bilinear resizing as the Python pipeline does it (algm_export.preprocess.resize_rgb, default "opencv"), so
// that the engine sees the same pixels in C++ and in Python.
#pragma once

#include "image.h"

namespace sample
{

// OpenCV's cv::resize INTER_LINEAR on 8-bit images (what mmcv's imresize and the research data pipeline use):
// half-pixel centres, no antialiasing, 11-bit fixed-point weights, OpenCV's integer rounding, bit for bit.
RgbImage resizeBilinear(RgbImage const& image, int width, int height);

} // namespace sample
