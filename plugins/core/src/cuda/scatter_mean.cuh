// Device scatter-mean: atomics into float32 accumulators (row stride T), then a pass that writes the
// outputs densely with the device-side token count T' as row stride.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace algm::cuda::detail
{

struct ScatterShape
{
    int32_t batch;
    int32_t tokens; // T: input rows per image, also the row stride of the accumulators
    int32_t channels;
};

// sums[b, slots[b, t], :] += sizes[b, t] * tokens[b, t, :]; sizeSums[b, slots[b, t]] += sizes[b, t].
// `sizes` may be null (every token has size 1). The accumulators must be zeroed beforehand.
template <typename Storage>
void launchScatterAccumulate(Storage const* tokens, float const* sizes, int32_t const* slots, ScatterShape const& shape,
    float* sums, float* sizeSums, cudaStream_t stream);

// merged[b, t, :] = sums[b, t, :] / sizeSums[b, t] and mergedSizes[b, t] = sizeSums[b, t] for t < T',
// T' = merges[1] read on the device.
template <typename Storage>
void launchScatterFinalize(float const* sums, float const* sizeSums, int32_t const* merges, ScatterShape const& shape,
    Storage* merged, float* mergedSizes, cudaStream_t stream);

} // namespace algm::cuda::detail
