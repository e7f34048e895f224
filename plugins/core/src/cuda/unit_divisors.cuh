// divisors[row] = max(||tokens[row]||, eps) for every row of a [rows, channels] tensor.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace algm::cuda::detail
{

template <typename Storage>
void launchUnitDivisors(Storage const* tokens, int64_t rows, int32_t channels, float* divisors, cudaStream_t stream);

} // namespace algm::cuda::detail
