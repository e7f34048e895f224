#include "algm/math.h"
#include "launch.cuh"
#include "unit_divisors.cuh"

#include <cuda_fp16.h>

namespace algm::cuda::detail
{
namespace
{

// One thread per row, summing its squares in channel order like the CPU build.
template <typename Storage>
__global__ void unitDivisorKernel(Storage const* tokens, int64_t rows, int32_t channels, float* divisors)
{
    for (int64_t row = threadIndex(); row < rows; row += threadCount())
    {
        divisors[row] = unitDivisor(tokens + row * channels, channels);
    }
}

} // namespace

template <typename Storage>
void launchUnitDivisors(Storage const* tokens, int64_t rows, int32_t channels, float* divisors, cudaStream_t stream)
{
    unitDivisorKernel<<<gridFor(rows), kThreads, 0, stream>>>(tokens, rows, channels, divisors);
}

template void launchUnitDivisors<float>(float const*, int64_t, int32_t, float*, cudaStream_t);
template void launchUnitDivisors<__half>(__half const*, int64_t, int32_t, float*, cudaStream_t);

} // namespace algm::cuda::detail
