#include "validate.h"

#include <cstdint>

namespace algm
{
namespace
{

// Every element index of a [batch, rows, width] tensor fits int64 and every row index fits int32.
bool fitsIndexing(int64_t batch, int64_t rows, int64_t width)
{
    return rows <= INT32_MAX && batch * rows <= INT32_MAX && batch * rows <= INT64_MAX / width;
}

// perImage is a flag: 1 (per-image rule) or 0 (published rule).
bool isBatchRule(int32_t perImage)
{
    return perImage == 0 || perImage == 1;
}

} // namespace

bool isValid(LocalMergeParams const& p)
{
    if (p.batch < 1 || p.channels < 1 || p.gridH < 1 || p.gridW < 1 || p.windowH < 1 || p.windowW < 1
        || !isBatchRule(p.perImage))
    {
        return false;
    }
    if (p.gridH % p.windowH != 0 || p.gridW % p.windowW != 0 || p.windowH * p.windowW < 2)
    {
        return false;
    }
    int64_t const tokens = 1 + static_cast<int64_t>(p.gridH) * p.gridW;
    return fitsIndexing(p.batch, tokens, p.channels);
}

bool isValid(GlobalMergeParams const& p)
{
    return p.batch >= 1 && p.tokens >= 2 && p.channels >= 1 && p.patches >= 1 && p.layerNumber >= 1
        && isBatchRule(p.perImage) && fitsIndexing(p.batch, p.tokens, p.channels)
        && fitsIndexing(p.batch, p.patches, 1);
}

bool isValid(UnmergeParams const& p)
{
    return p.batch >= 1 && p.tokens >= 1 && p.width >= 1 && p.patches >= 1 && fitsIndexing(p.batch, p.tokens, p.width)
        && fitsIndexing(p.batch, p.patches, p.width);
}

bool isValid(DataType dtype)
{
    return dtype == DataType::kFloat32 || dtype == DataType::kFloat16;
}

} // namespace algm
