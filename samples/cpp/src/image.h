// An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B.
#pragma once

#include <cstdint>
#include <vector>

namespace sample
{

struct RgbImage
{
    int width = 0;
    int height = 0;
    std::vector<uint8_t> pixels; // width * height * 3
};

} // namespace sample
