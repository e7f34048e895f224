// Runs a generic lambda with StorageTag<float> or StorageTag<HalfStorage> as `dtype` says
// (HalfStorage: algm::Half on the CPU, __half on the GPU). Call only with a validated dtype.
#pragma once

#include "algm/kernels.h"

namespace algm
{

template <typename Storage>
struct StorageTag
{
    using type = Storage;
};

template <typename HalfStorage, typename Function>
void withStorage(DataType dtype, Function&& function)
{
    if (dtype == DataType::kFloat16)
    {
        function(StorageTag<HalfStorage>{});
    }
    else
    {
        function(StorageTag<float>{});
    }
}

} // namespace algm
