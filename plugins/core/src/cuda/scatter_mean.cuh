// Device scatter-mean, deterministic: no float atomics. A first kernel places every input token at its
// position in the stable sort of the tokens by slot (computed, not accumulated: the number of tokens of a
// smaller slot plus the number of earlier tokens of the same slot), a second sums each output slot's
// members in that order with algm::slotMean, exactly as the CPU build does. Results are therefore the same
// on every run and bit-identical to the CPU kernels (same additions, same order, no FMA contraction).
// Cost: O(T) per token in the first kernel (B*T^2 slot comparisons, L1/L2-resident).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace algm::cuda::detail
{

struct ScatterShape
{
    int32_t batch;
    int32_t tokens; // T: input rows per image, also the row stride of order/ends
    int32_t channels;
};

// order[b, pos(t)] = t for the stable sort by slots[b, :]; ends[b, s] = end of slot s's run in order[b].
void launchScatterOrder(
    int32_t const* slots, ScatterShape const& shape, int32_t* order, int32_t* ends, cudaStream_t stream);

// merged[b, t, :] = size-weighted mean of slot t's members, mergedSizes[b, t] = their total size, for t < T'
// (T' = *outTokens, read on the device), written densely with row stride T'; slots at or past image b's own
// count imageTokens[b] are padding (zeros, size 0). `sizes` may be null (size 1).
template <typename Storage>
void launchScatterMean(Storage const* tokens, float const* sizes, int32_t const* order, int32_t const* ends,
    int32_t const* imageTokens, int32_t const* outTokens, ScatterShape const& shape, Storage* merged,
    float* mergedSizes, cudaStream_t stream);

} // namespace algm::cuda::detail
