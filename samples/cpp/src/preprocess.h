// The engine input from an RGB image, as algm_export.preprocess makes it in Python.
#pragma once

#include "image.h"

#include <array>
#include <vector>

namespace sample
{

// ((pixel / 255) - mean) / std per channel, laid out [3, H, W] (one image of an NCHW batch), float32.
std::vector<float> normalize(RgbImage const& image, std::array<float, 3> const& mean, std::array<float, 3> const& std);

} // namespace sample
