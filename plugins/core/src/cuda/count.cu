#include "algm/kernels.h"

namespace algm::cuda
{
namespace
{
__global__ void narrowCountKernel(int64_t const* count, int32_t* out)
{
    *out = static_cast<int32_t>(*count); // a token count: far below 2^31
}
} // namespace

Status narrowCount(int64_t const* count, int32_t* out, cudaStream_t stream)
{
    if (count == nullptr || out == nullptr)
    {
        return kInvalidArgument;
    }
    narrowCountKernel<<<1, 1, 0, stream>>>(count, out);
    return cudaGetLastError() == cudaSuccess ? kSuccess : kCudaError;
}

} // namespace algm::cuda
