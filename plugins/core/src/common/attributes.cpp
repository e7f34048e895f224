#include "algm/attributes.h"

#include <cmath>
#include <limits>
#include <utility>

namespace algm::attributes
{
namespace
{

constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

// "" when `value` lies in [minimum, maximum], else the out-of-range message for attribute `name`.
std::string checkRange(char const* name, int64_t value, int64_t minimum, int64_t maximum)
{
    if (value >= minimum && value <= maximum)
    {
        return {};
    }
    return std::string("'") + name + "' = " + std::to_string(value) + " is out of range [" + std::to_string(minimum)
        + ", " + std::to_string(maximum) + "]";
}

// The attributes both merges have: the batch rule and the size tensor's type.
std::string checkCommon(int64_t perImage, int64_t sizeDtype)
{
    std::string error = checkRange(contract::attr::per_image, perImage, 0, 1);
    return error.empty() ? checkRange(contract::kSizeDtype, sizeDtype, contract::kOnnxInt32, contract::kOnnxInt64)
                         : error;
}

} // namespace

std::string validate(LocalMerge const& a)
{
    std::pair<char const*, int64_t> const extents[]
        = {{contract::attr::grid_h, a.gridH}, {contract::attr::grid_w, a.gridW}, {contract::attr::window_h, a.windowH},
            {contract::attr::window_w, a.windowW}};
    for (auto const& [name, value] : extents)
    {
        std::string error = checkRange(name, value, 1, kInt32Max);
        if (!error.empty())
        {
            return error;
        }
    }
    if (!std::isfinite(a.threshold))
    {
        return std::string("'") + contract::attr::threshold + "' is not a finite number";
    }
    std::string error = checkCommon(a.perImage, a.sizeDtype);
    if (!error.empty())
    {
        return error;
    }
    if (a.gridH * a.gridW >= kInt32Max) // no overflow: both factors are at most 2^31 - 1
    {
        return "the grid has too many patches";
    }
    if (a.gridH % a.windowH != 0 || a.gridW % a.windowW != 0)
    {
        return "windows of " + std::to_string(a.windowH) + "x" + std::to_string(a.windowW) + " patches do not tile the "
            + std::to_string(a.gridH) + "x" + std::to_string(a.gridW) + " grid";
    }
    if (a.windowH * a.windowW < 2) // no overflow: a window is no larger than the grid
    {
        return "a window must hold at least 2 patches";
    }
    return {};
}

std::string validate(GlobalMerge const& a)
{
    std::string error = checkRange(contract::attr::layer_number, a.layerNumber, 1, kInt32Max);
    return error.empty() ? checkCommon(a.perImage, a.sizeDtype) : error;
}

} // namespace algm::attributes
