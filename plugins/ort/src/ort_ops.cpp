// libalgm_ort_ops.so: the CPU kernels of plugins/core behind ONNX Runtime's custom-op API, so that ONNX
// Runtime runs the `algm` nodes of model.trt.onnx through the same C++ code as the TensorRT plugins.
//
//   options.register_custom_ops_library("libalgm_ort_ops.so")   (Python)
//   Ort::SessionOptions::RegisterCustomOpsLibrary(...)            (C++)
//
// Registers the custom-op domain `algm` (LocalMerge, GlobalMerge, Unmerge; FP32 activations). The merge
// ops have data-dependent output shapes, like the TensorRT plugins: the kernels write into buffers sized
// for T' = T, then the outputs are allocated with the actual T' (the longest image's count under per-image
// merging, the others padded with size-0 tokens) and filled from them.
// Contract: docs/plugin-ops.md. Uses only the C API handed over by ONNX Runtime (no link to it).
#define ORT_API_MANUAL_INIT
#include <onnxruntime_cxx_api.h>
#undef ORT_API_MANUAL_INIT

#include "algm/contract.h"
#include "algm/kernels.h"

#include <cstdint>
#include <array>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace
{

using Shape = std::vector<int64_t>;

[[noreturn]] void fail(char const* op, std::string const& message)
{
    ORT_CXX_API_THROW(std::string(algm::contract::kDomain) + "::" + op + ": " + message, ORT_INVALID_ARGUMENT);
}

// An int64 attribute (the ONNX type of the contract's INT attributes) narrowed to the kernels' int32.
int32_t intAttribute(Ort::ConstKernelInfo const& info, char const* op, char const* name, int64_t minimum)
{
    int64_t const value = info.GetAttribute<int64_t>(name);
    if (value < minimum || value > std::numeric_limits<int32_t>::max())
    {
        fail(op, std::string("attribute ") + name + " = " + std::to_string(value) + " is out of range");
    }
    return static_cast<int32_t>(value);
}

// The node's batch rule: per_image (1 = per-image merging, the exporter's default; 0 = the published batch
// minimum). Graphs exported before the attribute existed have none: the published rule.
int32_t batchRule(Ort::ConstKernelInfo const& info, char const* op)
{
    int64_t perImage = 0;
    try
    {
        perImage = info.GetAttribute<int64_t>(algm::contract::attr::per_image);
    }
    catch (Ort::Exception const&)
    {
        return 0;
    }
    if (perImage != 0 && perImage != 1)
    {
        fail(op, "attribute per_image = " + std::to_string(perImage) + " must be 0 or 1");
    }
    return static_cast<int32_t>(perImage);
}

int32_t extent(int64_t value, char const* op)
{
    if (value < 0 || value > std::numeric_limits<int32_t>::max())
    {
        fail(op, "tensor extent " + std::to_string(value) + " is out of range");
    }
    return static_cast<int32_t>(value);
}

Shape shapeOf(Ort::ConstValue const& value, size_t rank, char const* op, char const* name)
{
    Shape shape = value.GetTensorTypeAndShapeInfo().GetShape();
    if (shape.size() != rank)
    {
        fail(op, std::string(name) + " must have rank " + std::to_string(rank));
    }
    return shape;
}

void check(algm::Status status, char const* op)
{
    if (status != algm::kSuccess)
    {
        fail(op, "the kernel rejected its arguments (status " + std::to_string(static_cast<int>(status)) + ")");
    }
}

// The kernels' outputs for the upper bound T' = T, written densely with the actual T' as row stride.
struct MergeScratch
{
    MergeScratch(int64_t batch, int64_t tokens, int64_t channels, int64_t patches)
        : merged(static_cast<size_t>(batch * tokens * channels))
        , sizes(static_cast<size_t>(batch * tokens))
        , map(static_cast<size_t>(batch * patches))
    {
    }

    // Allocates the four outputs with the actual T' and copies the dense prefix into them.
    void writeOutputs(Ort::KernelContext& context, int64_t batch, int64_t channels, int64_t patches) const
    {
        Shape const mergedShape{batch, count, channels};
        Shape const sizesShape{batch, count};
        Shape const mapShape{batch, patches};
        auto merged_ = context.GetOutput(algm::contract::kMergedOutput, mergedShape);
        std::memcpy(merged_.GetTensorMutableData<float>(), merged.data(), sizeof(float) * batch * count * channels);
        auto sizes_ = context.GetOutput(algm::contract::kSizesOutput, sizesShape);
        std::memcpy(sizes_.GetTensorMutableData<float>(), sizes.data(), sizeof(float) * batch * count);
        auto map_ = context.GetOutput(algm::contract::kMapOutput, mapShape);
        std::memcpy(map_.GetTensorMutableData<int32_t>(), map.data(), sizeof(int32_t) * batch * patches);
        // The contract's size tensor type (docs/plugin-ops.md): INT32.
        static_assert(algm::contract::kSizeDtypeDefault == algm::contract::kOnnxInt32, "num_tokens is INT32");
        auto count_ = context.GetOutput(algm::contract::kNumTokensOutput, nullptr, 0);
        *count_.GetTensorMutableData<int32_t>() = static_cast<int32_t>(count);
    }

    std::vector<float> merged;
    std::vector<float> sizes;
    std::vector<int32_t> map;
    int64_t count{};
};

struct LocalMergeKernel
{
    LocalMergeKernel(OrtApi const& /*api*/, OrtKernelInfo const* info)
    {
        Ort::ConstKernelInfo const attributes(info);
        char const* op = algm::contract::kLocalMerge;
        params.gridH = intAttribute(attributes, op, algm::contract::attr::grid_h, 1);
        params.gridW = intAttribute(attributes, op, algm::contract::attr::grid_w, 1);
        params.windowH = intAttribute(attributes, op, algm::contract::attr::window_h, 1);
        params.windowW = intAttribute(attributes, op, algm::contract::attr::window_w, 1);
        params.threshold = attributes.GetAttribute<float>(algm::contract::attr::threshold);
        params.perImage = batchRule(attributes, op);
    }

    void Compute(OrtKernelContext* raw)
    {
        char const* op = algm::contract::kLocalMerge;
        Ort::KernelContext context(raw);
        Ort::ConstValue const tokens = context.GetInput(0);
        Shape const shape = shapeOf(tokens, 3, op, "tokens");
        algm::LocalMergeParams p = params;
        p.batch = extent(shape[0], op);
        p.channels = extent(shape[2], op);
        int64_t const patches = int64_t{p.gridH} * p.gridW;
        if (shape[1] != 1 + patches)
        {
            fail(op, "tokens have " + std::to_string(shape[1]) + " rows, expected 1 + grid_h*grid_w");
        }
        size_t const bytes = algm::localMergeWorkspaceSize(p);
        if (bytes == 0)
        {
            fail(op, "invalid grid/window attributes");
        }
        std::vector<unsigned char> workspace(bytes);
        MergeScratch out(shape[0], shape[1], shape[2], patches);
        check(algm::cpu::localMerge(algm::DataType::kFloat32, tokens.GetTensorData<float>(), out.merged.data(),
                  out.sizes.data(), out.map.data(), &out.count, p, workspace.data()),
            op);
        out.writeOutputs(context, shape[0], shape[2], patches);
    }

    algm::LocalMergeParams params{};
};

struct GlobalMergeKernel
{
    GlobalMergeKernel(OrtApi const& /*api*/, OrtKernelInfo const* info)
        : layerNumber(intAttribute(
            Ort::ConstKernelInfo(info), algm::contract::kGlobalMerge, algm::contract::attr::layer_number, 1))
        , perImage(batchRule(Ort::ConstKernelInfo(info), algm::contract::kGlobalMerge))
    {
    }

    void Compute(OrtKernelContext* raw)
    {
        char const* op = algm::contract::kGlobalMerge;
        Ort::KernelContext context(raw);
        Ort::ConstValue const tokens = context.GetInput(0);
        Ort::ConstValue const sizes = context.GetInput(1);
        Ort::ConstValue const map = context.GetInput(2);
        Shape const shape = shapeOf(tokens, 3, op, "tokens");
        Shape const mapShape = shapeOf(map, 2, op, "token_map");
        if (shapeOf(sizes, 2, op, "sizes") != Shape{shape[0], shape[1]} || mapShape[0] != shape[0])
        {
            fail(op, "sizes [B, T] and token_map [B, N] do not fit tokens [B, T, C]");
        }
        algm::GlobalMergeParams const p{extent(shape[0], op), extent(shape[1], op), extent(shape[2], op),
            extent(mapShape[1], op), layerNumber, perImage};
        size_t const bytes = algm::globalMergeWorkspaceSize(p);
        if (bytes == 0)
        {
            fail(op, "invalid shapes");
        }
        std::vector<unsigned char> workspace(bytes);
        MergeScratch out(shape[0], shape[1], shape[2], mapShape[1]);
        check(algm::cpu::globalMerge(algm::DataType::kFloat32, tokens.GetTensorData<float>(),
                  sizes.GetTensorData<float>(), map.GetTensorData<int32_t>(), out.merged.data(), out.sizes.data(),
                  out.map.data(), &out.count, p, workspace.data()),
            op);
        out.writeOutputs(context, shape[0], shape[2], mapShape[1]);
    }

    int32_t layerNumber;
    int32_t perImage;
};

struct UnmergeKernel
{
    UnmergeKernel(OrtApi const& /*api*/, OrtKernelInfo const* /*info*/) {}

    void Compute(OrtKernelContext* raw)
    {
        char const* op = algm::contract::kUnmerge;
        Ort::KernelContext context(raw);
        Ort::ConstValue const values = context.GetInput(0);
        Ort::ConstValue const map = context.GetInput(1);
        Shape const shape = shapeOf(values, 3, op, "values");
        Shape const mapShape = shapeOf(map, 2, op, "token_map");
        if (mapShape[0] != shape[0])
        {
            fail(op, "token_map [B, N] does not fit values [B, M, K]");
        }
        algm::UnmergeParams const p{extent(shape[0], op), extent(shape[1], op), extent(shape[2], op),
            extent(mapShape[1], op)};
        auto out = context.GetOutput(0, Shape{shape[0], mapShape[1], shape[2]});
        check(algm::cpu::unmerge(algm::DataType::kFloat32, values.GetTensorData<float>(),
                  map.GetTensorData<int32_t>(), out.GetTensorMutableData<float>(), p),
            op);
    }
};

constexpr ONNXTensorElementDataType kFloat = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
constexpr ONNXTensorElementDataType kInt32 = ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;

// Operator descriptions: name, input and output element types.
template <typename Kernel, char const* Name, size_t Inputs, size_t Outputs>
struct Operator : Ort::CustomOpBase<Operator<Kernel, Name, Inputs, Outputs>, Kernel>
{
    Operator(std::array<ONNXTensorElementDataType, Inputs> inputs, std::array<ONNXTensorElementDataType, Outputs> outputs)
        : inputTypes(inputs)
        , outputTypes(outputs)
    {
    }

    void* CreateKernel(OrtApi const& api, OrtKernelInfo const* info) const
    {
        return new Kernel(api, info);
    }

    char const* GetName() const
    {
        return Name;
    }

    size_t GetInputTypeCount() const
    {
        return Inputs;
    }

    ONNXTensorElementDataType GetInputType(size_t index) const
    {
        return inputTypes[index];
    }

    size_t GetOutputTypeCount() const
    {
        return Outputs;
    }

    ONNXTensorElementDataType GetOutputType(size_t index) const
    {
        return outputTypes[index];
    }

    std::array<ONNXTensorElementDataType, Inputs> inputTypes;
    std::array<ONNXTensorElementDataType, Outputs> outputTypes;
};

using LocalMergeOp = Operator<LocalMergeKernel, algm::contract::kLocalMerge, 1, 4>;
using GlobalMergeOp = Operator<GlobalMergeKernel, algm::contract::kGlobalMerge, 3, 4>;
using UnmergeOp = Operator<UnmergeKernel, algm::contract::kUnmerge, 2, 1>;

} // namespace

extern "C" __attribute__((visibility("default"))) OrtStatus* ORT_API_CALL RegisterCustomOps(
    OrtSessionOptions* options, OrtApiBase const* apiBase)
{
    OrtApi const* api = apiBase->GetApi(ORT_API_VERSION);
    if (api == nullptr)
    {
        return nullptr; // an ONNX Runtime older than these headers: no API to report through; its session fails
    }
    Ort::InitApi(api);
    static std::array<ONNXTensorElementDataType, 4> const kMergeOutputs{kFloat, kFloat, kInt32, kInt32};
    static LocalMergeOp const localMerge({kFloat}, kMergeOutputs);
    static GlobalMergeOp const globalMerge({kFloat, kFloat, kInt32}, kMergeOutputs);
    static UnmergeOp const unmerge({kFloat, kInt32}, {kFloat});
    try
    {
        // The domain must outlive every session that uses it: one per process, kept until exit.
        static Ort::CustomOpDomain domain = [] {
            Ort::CustomOpDomain created(algm::contract::kDomain);
            created.Add(&localMerge);
            created.Add(&globalMerge);
            created.Add(&unmerge);
            return created;
        }();
        Ort::UnownedSessionOptions(options).Add(domain);
    }
    catch (Ort::Exception const& error)
    {
        return Ort::Status(error).release();
    }
    return nullptr;
}
