// PNG files through libpng's simplified API.
#pragma once

#include "image.h"

#include <cstdint>
#include <string>
#include <vector>

namespace sample
{

// Any PNG (grey, palette, RGB, with or without alpha, 8 or 16 bit) as 8-bit RGB. An alpha channel is
// dropped, not composited, like PIL's Image.convert("RGB") in the Python pipeline.
RgbImage readPng(std::string const& path);

// Writes an 8-bit palette PNG whose pixel values are the class indices of `labels` (all < 256) and whose
// palette is `colours` (RGB triples), so that it shows in colour and reads back as indices (PIL mode "P").
// Written to a temporary file first and renamed: never half-written.
void writeLabelPng(std::string const& path, int width, int height, std::vector<int32_t> const& labels,
    std::vector<uint8_t> const& colours);

} // namespace sample
