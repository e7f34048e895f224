// CPU Unmerge: patch_values[b, p, :] = values[b, token_map[b, p], :] (a copy of the stored bits; out-of-range
// entries: math.h's token-map policy).
#include "algm/kernels.h"
#include "algm/math.h"
#include "../common/validate.h"

#include <cstring>

namespace algm::cpu
{

Status unmerge(
    DataType dtype, void const* values, int32_t const* tokenMap, void* patchValues, UnmergeParams const& params)
{
    if (!isValid(dtype) || !isValid(params) || !values || !tokenMap || !patchValues)
    {
        return kInvalidArgument;
    }
    int64_t const entries = static_cast<int64_t>(params.batch) * params.patches;
    size_t const rowBytes = static_cast<size_t>(params.width) * (dtype == DataType::kFloat16 ? 2 : 4);
    auto const* source = static_cast<unsigned char const*>(values);
    auto* target = static_cast<unsigned char*>(patchValues);
    bool inRange = true;
    for (int64_t i = 0; i < entries; ++i)
    {
        // The token-map policy of math.h: an out-of-range entry gathers a zero row, as on CUDA, and is reported.
        if (!mapEntryInRange(tokenMap[i], params.tokens))
        {
            std::memset(target + i * rowBytes, 0, rowBytes);
            inRange = false;
            continue;
        }
        int64_t const b = i / params.patches;
        int64_t const sourceRow = b * params.tokens + tokenMap[i];
        std::memcpy(target + i * rowBytes, source + sourceRow * rowBytes, rowBytes);
    }
    return inRange ? kSuccess : kInvalidArgument;
}

} // namespace algm::cpu
