// Bilinear resizing as the Python pipeline does it (PIL Image.resize(..., Image.BILINEAR)), so that the
// engine sees the same pixels in C++ and in Python.
#pragma once

#include "image.h"

namespace sample
{

// PIL's bilinear resampling: a separable triangle filter that widens with the scale factor when shrinking
// (antialiasing), 8-bit fixed-point weights, rounding after the horizontal then the vertical pass.
RgbImage resizeBilinear(RgbImage const& image, int width, int height);

} // namespace sample
