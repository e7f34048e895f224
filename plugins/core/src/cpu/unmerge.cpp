// CPU Unmerge: patch_values[b, p, :] = values[b, token_map[b, p], :] (a copy of the stored bits).
#include "algm/kernels.h"
#include "../common/validate.h"

#include <algorithm>
#include <cstring>

namespace algm::cpu
{

Status unmerge(DataType dtype, void const* values, int32_t const* tokenMap, void* patchValues,
    UnmergeParams const& params)
{
    if (!isValid(dtype) || !isValid(params) || !values || !tokenMap || !patchValues)
    {
        return kInvalidArgument;
    }
    int64_t const entries = static_cast<int64_t>(params.batch) * params.patches;
    if (!std::all_of(tokenMap, tokenMap + entries, [&](int32_t v) { return v >= 0 && v < params.tokens; }))
    {
        return kInvalidArgument;
    }
    size_t const rowBytes = static_cast<size_t>(params.width) * (dtype == DataType::kFloat16 ? 2 : 4);
    auto const* source = static_cast<unsigned char const*>(values);
    auto* target = static_cast<unsigned char*>(patchValues);
    for (int64_t i = 0; i < entries; ++i)
    {
        int64_t const b = i / params.patches;
        int64_t const sourceRow = b * params.tokens + tokenMap[i];
        std::memcpy(target + i * rowBytes, source + sourceRow * rowBytes, rowBytes);
    }
    return kSuccess;
}

} // namespace algm::cpu
