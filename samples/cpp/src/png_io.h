// PNG files through libpng's simplified API.
#pragma once

#include "image.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sample
{

// Any PNG (grey, palette, RGB, with or without alpha, 8 or 16 bit) as 8-bit RGB. An alpha channel is
// dropped, not composited, like PIL's Image.convert("RGB") in the Python pipeline. 16-bit samples are mapped
// to 8 bits as the Python side does (algm_export/photos.py): grey round(v * 255 / 65535), colour v >> 8.
RgbImage readPng(std::string const& path);

// Label PNGs use a palette up to this many classes (8-bit indices), 16-bit grey indices above.
inline constexpr size_t kPaletteClasses = 256;

// Writes the class indices of `labels` (each < the number of `colours`, RGB triples, one per class): up to
// kPaletteClasses classes as an 8-bit palette PNG with `colours` as its palette, so that it shows in colour and
// reads back as indices (PIL mode "P"); above, as a 16-bit grey PNG of the indices, as Python writes it (PIL
// mode "I;16"). Written to a temporary file first and renamed: never half-written.
void writeLabelPng(std::string const& path, int width, int height, std::vector<int32_t> const& labels,
    std::vector<uint8_t> const& colours);

} // namespace sample
