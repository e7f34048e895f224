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
// Attributes are validated by algm::attributes::validate, shared with the TensorRT creators (same rules, same
// messages). Kernels use the status-returning custom-op API (CreateKernelV2 / KernelComputeV2): every error,
// at kernel creation or at run time, is returned to ONNX Runtime as an OrtStatus; no exception crosses the C API.
// Contract: docs/plugin-ops.md. Uses only the C API handed over by ONNX Runtime (no link to it).
#define ORT_API_MANUAL_INIT
#include <onnxruntime_cxx_api.h>
#undef ORT_API_MANUAL_INIT

#include "algm/attributes.h"
#include "algm/contract.h"
#include "algm/kernels.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <exception>
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

// Runs `body` and returns its outcome as the status the V2 custom-op API expects: nullptr on success, else the
// error (Ort::Exception from fail() or the C++ API, any other exception as ORT_FAIL naming the op).
template <typename Body>
OrtStatusPtr guarded(char const* op, Body const& body) noexcept
{
    try
    {
        body();
        return nullptr;
    }
    catch (Ort::Exception const& error)
    {
        return Ort::Status(error).release();
    }
    catch (std::exception const& error)
    {
        std::string const message = std::string(algm::contract::kDomain) + "::" + op + ": " + error.what();
        return Ort::Status(message.c_str(), ORT_FAIL).release();
    }
    catch (...)
    {
        std::string const message = std::string(algm::contract::kDomain) + "::" + op + ": unknown error";
        return Ort::Status(message.c_str(), ORT_FAIL).release();
    }
}

// Whether the node has INT attribute `name`; if so, its value in `value` (the C API: no exception when absent).
bool readAttribute(OrtKernelInfo const* info, char const* name, int64_t& value)
{
    OrtStatus* const status = Ort::GetApi().KernelInfoGetAttribute_int64(info, name, &value);
    if (status == nullptr)
    {
        return true;
    }
    Ort::GetApi().ReleaseStatus(status);
    return false;
}

bool readAttribute(OrtKernelInfo const* info, char const* name, float& value)
{
    OrtStatus* const status = Ort::GetApi().KernelInfoGetAttribute_float(info, name, &value);
    if (status == nullptr)
    {
        return true;
    }
    Ort::GetApi().ReleaseStatus(status);
    return false;
}

template <typename T>
void requireAttribute(OrtKernelInfo const* info, char const* op, char const* name, T& value)
{
    if (!readAttribute(info, name, value))
    {
        fail(op, std::string("missing attribute '") + name + "' (" + (sizeof(T) == 8 ? "INT" : "FLOAT") + ")");
    }
}

// The shared validation's verdict, then what only these ops add: num_tokens is INT32 (the contract's default and
// what algm-export writes); size_dtype = INT64 is valid for TensorRT but not offered here, so it is refused.
void checkAttributes(char const* op, std::string const& error, int64_t sizeDtype)
{
    if (!error.empty())
    {
        fail(op, error);
    }
    static_assert(algm::contract::kSizeDtypeDefault == algm::contract::kOnnxInt32, "num_tokens is INT32");
    if (sizeDtype != algm::contract::kOnnxInt32)
    {
        fail(op,
            std::string(algm::contract::kSizeDtype) + " = " + std::to_string(sizeDtype)
                + " (INT64) is not supported by libalgm_ort_ops.so: its num_tokens output is INT32 (size_dtype = 6)");
    }
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

// `invalid`: what kInvalidArgument means once the shapes were checked here (for example an out-of-range token map).
void check(algm::Status status, char const* op, char const* invalid)
{
    if (status != algm::kSuccess)
    {
        fail(op,
            status == algm::kInvalidArgument ? std::string(invalid)
                                             : "the kernel failed (status " + std::to_string(status) + ")");
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
        // The contract's size tensor type (docs/plugin-ops.md): INT32 (checkAttributes refuses another size_dtype).
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
    explicit LocalMergeKernel(OrtKernelInfo const* info)
    {
        char const* op = algm::contract::kLocalMerge;
        algm::attributes::LocalMerge read;
        requireAttribute(info, op, algm::contract::attr::grid_h, read.gridH);
        requireAttribute(info, op, algm::contract::attr::grid_w, read.gridW);
        requireAttribute(info, op, algm::contract::attr::window_h, read.windowH);
        requireAttribute(info, op, algm::contract::attr::window_w, read.windowW);
        requireAttribute(info, op, algm::contract::attr::threshold, read.threshold);
        readAttribute(info, algm::contract::attr::per_image, read.perImage); // optional: absent is the default
        readAttribute(info, algm::contract::kSizeDtype, read.sizeDtype);
        checkAttributes(op, algm::attributes::validate(read), read.sizeDtype);
        // Narrowing is exact: validate() keeps every value within int32.
        params.gridH = static_cast<int32_t>(read.gridH);
        params.gridW = static_cast<int32_t>(read.gridW);
        params.windowH = static_cast<int32_t>(read.windowH);
        params.windowW = static_cast<int32_t>(read.windowW);
        params.threshold = read.threshold;
        params.perImage = static_cast<int32_t>(read.perImage);
    }

    OrtStatusPtr ComputeV2(OrtKernelContext* raw) const noexcept
    {
        return guarded(algm::contract::kLocalMerge, [&] { compute(raw); });
    }

    void compute(OrtKernelContext* raw) const
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
            fail(op,
                "tokens [" + std::to_string(shape[0]) + ", " + std::to_string(shape[1]) + ", "
                    + std::to_string(shape[2]) + "] are too large to index");
        }
        std::vector<unsigned char> workspace(bytes);
        MergeScratch out(shape[0], shape[1], shape[2], patches);
        check(algm::cpu::localMerge(algm::DataType::kFloat32, tokens.GetTensorData<float>(), out.merged.data(),
                  out.sizes.data(), out.map.data(), &out.count, p, workspace.data()),
            op, "the kernel rejected its arguments");
        out.writeOutputs(context, shape[0], shape[2], patches);
    }

    algm::LocalMergeParams params{};
};

struct GlobalMergeKernel
{
    explicit GlobalMergeKernel(OrtKernelInfo const* info)
    {
        char const* op = algm::contract::kGlobalMerge;
        algm::attributes::GlobalMerge read;
        requireAttribute(info, op, algm::contract::attr::layer_number, read.layerNumber);
        readAttribute(info, algm::contract::attr::per_image, read.perImage); // optional: absent is the default
        readAttribute(info, algm::contract::kSizeDtype, read.sizeDtype);
        checkAttributes(op, algm::attributes::validate(read), read.sizeDtype);
        layerNumber = static_cast<int32_t>(read.layerNumber); // exact: validated
        perImage = static_cast<int32_t>(read.perImage);
    }

    OrtStatusPtr ComputeV2(OrtKernelContext* raw) const noexcept
    {
        return guarded(algm::contract::kGlobalMerge, [&] { compute(raw); });
    }

    void compute(OrtKernelContext* raw) const
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
            fail(op, "tokens [B, T, C] need T >= 2 and sizes that fit int32 indexing");
        }
        std::vector<unsigned char> workspace(bytes);
        MergeScratch out(shape[0], shape[1], shape[2], mapShape[1]);
        check(algm::cpu::globalMerge(algm::DataType::kFloat32, tokens.GetTensorData<float>(),
                  sizes.GetTensorData<float>(), map.GetTensorData<int32_t>(), out.merged.data(), out.sizes.data(),
                  out.map.data(), &out.count, p, workspace.data()),
            op, "the token map names tokens outside [0, T - 2] (out-of-range entries)");
        out.writeOutputs(context, shape[0], shape[2], mapShape[1]);
    }

    int32_t layerNumber{};
    int32_t perImage{};
};

struct UnmergeKernel
{
    explicit UnmergeKernel(OrtKernelInfo const* /*info*/)
    {
    }

    OrtStatusPtr ComputeV2(OrtKernelContext* raw) const noexcept
    {
        return guarded(algm::contract::kUnmerge, [&] { compute(raw); });
    }

    void compute(OrtKernelContext* raw) const
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
        algm::UnmergeParams const p{
            extent(shape[0], op), extent(shape[1], op), extent(shape[2], op), extent(mapShape[1], op)};
        auto out = context.GetOutput(0, Shape{shape[0], mapShape[1], shape[2]});
        check(algm::cpu::unmerge(algm::DataType::kFloat32, values.GetTensorData<float>(), map.GetTensorData<int32_t>(),
                  out.GetTensorMutableData<float>(), p),
            op, "the token map names tokens outside [0, M - 1] (out-of-range entries)");
    }
};

constexpr ONNXTensorElementDataType kFloat = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
constexpr ONNXTensorElementDataType kInt32 = ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;

// Operator descriptions: name, input and output element types; the status-returning kernel API (WithStatus).
template <typename Kernel, char const* Name, size_t Inputs, size_t Outputs>
struct Operator : Ort::CustomOpBase<Operator<Kernel, Name, Inputs, Outputs>, Kernel, true>
{
    Operator(
        std::array<ONNXTensorElementDataType, Inputs> inputs, std::array<ONNXTensorElementDataType, Outputs> outputs)
        : inputTypes(inputs)
        , outputTypes(outputs)
    {
    }

    OrtStatusPtr CreateKernelV2(OrtApi const& /*api*/, OrtKernelInfo const* info, void** kernel) const noexcept
    {
        *kernel = nullptr;
        return guarded(Name, [&] { *kernel = new Kernel(info); });
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
