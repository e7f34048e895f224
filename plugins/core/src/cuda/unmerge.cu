// CUDA Unmerge: patch_values[b, p, :] = values[b, token_map[b, p], :], copying the stored bits.
#include "algm/kernels.h"
#include "algm/math.h"
#include "../common/validate.h"
#include "launch.cuh"

#include <cstdint>

namespace algm::cuda
{
namespace
{

using namespace detail;

// `Word` is an integer of the element size. An out-of-range map entry gives a zero row (math.h's token-map
// policy, as on the CPU; not reported: that would need a host synchronisation).
template <typename Word>
__global__ void gatherRowsKernel(Word const* values, int32_t const* tokenMap, UnmergeParams p, Word* patchValues)
{
    int64_t const total = static_cast<int64_t>(p.batch) * p.patches * p.width;
    for (int64_t i = threadIndex(); i < total; i += threadCount())
    {
        int64_t const row = i / p.width;
        int64_t const column = i - row * p.width;
        int64_t const image = row / p.patches;
        int32_t const token = tokenMap[row];
        patchValues[i]
            = mapEntryInRange(token, p.tokens) ? values[(image * p.tokens + token) * p.width + column] : Word{0};
    }
}

} // namespace

Status unmerge(DataType dtype, void const* values, int32_t const* tokenMap, void* patchValues,
    UnmergeParams const& params, cudaStream_t stream)
{
    if (!isValid(dtype) || !isValid(params) || !values || !tokenMap || !patchValues)
    {
        return kInvalidArgument;
    }
    unsigned const blocks = gridFor(static_cast<int64_t>(params.batch) * params.patches * params.width);
    if (dtype == DataType::kFloat16)
    {
        gatherRowsKernel<<<blocks, kThreads, 0, stream>>>(
            static_cast<uint16_t const*>(values), tokenMap, params, static_cast<uint16_t*>(patchValues));
    }
    else
    {
        gatherRowsKernel<<<blocks, kThreads, 0, stream>>>(
            static_cast<uint32_t const*>(values), tokenMap, params, static_cast<uint32_t*>(patchValues));
    }
    return launchStatus();
}

} // namespace algm::cuda
