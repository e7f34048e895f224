// PNG files through libpng's simplified API.
#pragma once

#include "image.h"

#include <string>

namespace sample
{

// Any PNG (grey, palette, RGB, with or without alpha, 8 or 16 bit) as 8-bit RGB. An alpha channel is
// dropped, not composited, like PIL's Image.convert("RGB") in the Python pipeline.
RgbImage readPng(std::string const& path);

void writePng(std::string const& path, RgbImage const& image);

} // namespace sample
