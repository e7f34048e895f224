// openTensorRT for builds without libnvinfer (the TensorRT backend is then only compile-checked).
#include "backend.h"

#include <stdexcept>

namespace sample
{

std::unique_ptr<Backend> openTensorRT(std::string const& path, std::string const& /*plugins*/)
{
    throw std::runtime_error(path
        + ": this algm_segment was built without TensorRT (libnvinfer not found at "
          "build time; set TensorRT_ROOT)");
}

} // namespace sample
