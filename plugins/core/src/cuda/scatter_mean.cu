#include "algm/math.h"
#include "launch.cuh"
#include "scatter_mean.cuh"

#include <cuda_fp16.h>

namespace algm::cuda::detail
{
namespace
{

template <typename Storage>
__global__ void scatterAccumulateKernel(Storage const* tokens, float const* sizes, int32_t const* slots,
    ScatterShape shape, float* sums, float* sizeSums)
{
    int64_t const total = static_cast<int64_t>(shape.batch) * shape.tokens * shape.channels;
    for (int64_t i = threadIndex(); i < total; i += threadCount())
    {
        int64_t const row = i / shape.channels;
        int64_t const channel = i - row * shape.channels;
        int64_t const image = row / shape.tokens;
        int64_t const slotRow = image * shape.tokens + slots[row];
        float const size = sizes ? sizes[row] : 1.0f;
        atomicAdd(sums + slotRow * shape.channels + channel, __fmul_rn(size, loadFloat(tokens[i])));
        if (channel == 0)
        {
            atomicAdd(sizeSums + slotRow, size);
        }
    }
}

// Runs over the upper bound T rows per image; rows at or past T' are skipped.
template <typename Storage>
__global__ void scatterFinalizeKernel(float const* sums, float const* sizeSums, int32_t const* merges,
    ScatterShape shape, Storage* merged, float* mergedSizes)
{
    int64_t const outTokens = merges[1];
    int64_t const total = static_cast<int64_t>(shape.batch) * shape.tokens * shape.channels;
    for (int64_t i = threadIndex(); i < total; i += threadCount())
    {
        int64_t const row = i / shape.channels;
        int64_t const channel = i - row * shape.channels;
        int64_t const image = row / shape.tokens;
        int64_t const token = row - image * shape.tokens;
        if (token >= outTokens)
        {
            continue;
        }
        int64_t const outRow = image * outTokens + token;
        merged[outRow * shape.channels + channel] = storeAs<Storage>(scatterMean(sums[i], sizeSums[row]));
        if (channel == 0)
        {
            mergedSizes[outRow] = sizeSums[row];
        }
    }
}

int64_t elements(ScatterShape const& shape)
{
    return static_cast<int64_t>(shape.batch) * shape.tokens * shape.channels;
}

} // namespace

template <typename Storage>
void launchScatterAccumulate(Storage const* tokens, float const* sizes, int32_t const* slots, ScatterShape const& shape,
    float* sums, float* sizeSums, cudaStream_t stream)
{
    scatterAccumulateKernel<<<gridFor(elements(shape)), kThreads, 0, stream>>>(
        tokens, sizes, slots, shape, sums, sizeSums);
}

template <typename Storage>
void launchScatterFinalize(float const* sums, float const* sizeSums, int32_t const* merges, ScatterShape const& shape,
    Storage* merged, float* mergedSizes, cudaStream_t stream)
{
    scatterFinalizeKernel<<<gridFor(elements(shape)), kThreads, 0, stream>>>(
        sums, sizeSums, merges, shape, merged, mergedSizes);
}

template void launchScatterAccumulate<float>(
    float const*, float const*, int32_t const*, ScatterShape const&, float*, float*, cudaStream_t);
template void launchScatterAccumulate<__half>(
    __half const*, float const*, int32_t const*, ScatterShape const&, float*, float*, cudaStream_t);
template void launchScatterFinalize<float>(
    float const*, float const*, int32_t const*, ScatterShape const&, float*, float*, cudaStream_t);
template void launchScatterFinalize<__half>(
    float const*, float const*, int32_t const*, ScatterShape const&, __half*, float*, cudaStream_t);

} // namespace algm::cuda::detail
