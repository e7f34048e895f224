#include "local_merge_plugin.h"

#include "algm/attributes.h"
#include "merge_outputs.h"
#include "tensors.h"

#include <array>

namespace algm::trt
{
namespace
{
using nvinfer1::DataType;
using nvinfer1::PluginFieldType;

constexpr char const* kGridH = contract::attr::grid_h;
constexpr char const* kGridW = contract::attr::grid_w;
constexpr char const* kWindowH = contract::attr::window_h;
constexpr char const* kWindowW = contract::attr::window_w;
constexpr char const* kThreshold = contract::attr::threshold;


int64_t patchCount(LocalMergeAttributes const& attributes) noexcept
{
    return int64_t{attributes.gridH} * attributes.gridW;
}

// The kernel parameters for tokens of shape `tokens`; false unless they are [B, 1 + grid_h*grid_w, C].
bool makeParams(
    nvinfer1::Dims const& tokens, LocalMergeAttributes const& attributes, algm::LocalMergeParams& params) noexcept
{
    if (tokens.nbDims != 3 || tokens.d[1] != 1 + patchCount(attributes))
    {
        return false;
    }
    params.gridH = attributes.gridH;
    params.gridW = attributes.gridW;
    params.windowH = attributes.windowH;
    params.windowW = attributes.windowW;
    params.threshold = attributes.threshold;
    params.perImage = attributes.perImage;
    return toExtent(tokens.d[0], params.batch) && toExtent(tokens.d[2], params.channels);
}
} // namespace

std::vector<nvinfer1::PluginField> LocalMergePlugin::fieldNames()
{
    return {fieldName(kGridH, PluginFieldType::kINT32), fieldName(kGridW, PluginFieldType::kINT32),
        fieldName(kWindowH, PluginFieldType::kINT32), fieldName(kWindowW, PluginFieldType::kINT32),
        fieldName(kThreshold, PluginFieldType::kFLOAT32), fieldName(contract::attr::per_image, PluginFieldType::kINT32),
        fieldName(contract::kSizeDtype, PluginFieldType::kINT32)};
}

std::optional<LocalMergeAttributes> LocalMergePlugin::parse(
    nvinfer1::PluginFieldCollection const& fields, std::string& error)
{
    // Types and presence here; values by the validation shared with the ONNX Runtime ops.
    FieldReader reader(fields);
    algm::attributes::LocalMerge read;
    reader.readInteger(kGridH, read.gridH);
    reader.readInteger(kGridW, read.gridW);
    reader.readInteger(kWindowH, read.windowH);
    reader.readInteger(kWindowW, read.windowW);
    reader.readFloat32(kThreshold, read.threshold);
    reader.readOptionalInteger(contract::attr::per_image, read.perImage);
    reader.readOptionalInteger(contract::kSizeDtype, read.sizeDtype);
    error = reader.ok() ? algm::attributes::validate(read) : reader.error();
    if (!error.empty())
    {
        return std::nullopt;
    }
    // Narrowing is exact: validate() keeps every value within int32.
    return Attributes{static_cast<int32_t>(read.gridH), static_cast<int32_t>(read.gridW),
        static_cast<int32_t>(read.windowH), static_cast<int32_t>(read.windowW), read.threshold,
        static_cast<int32_t>(read.perImage), static_cast<int32_t>(read.sizeDtype)};
}

std::vector<nvinfer1::PluginField> LocalMergePlugin::serializedFields(Attributes const& attributes)
{
    return {valueField(kGridH, attributes.gridH), valueField(kGridW, attributes.gridW),
        valueField(kWindowH, attributes.windowH), valueField(kWindowW, attributes.windowW),
        valueField(kThreshold, attributes.threshold), valueField(contract::attr::per_image, attributes.perImage),
        valueField(contract::kSizeDtype, attributes.sizeDtype)};
}

LocalMergePlugin::LocalMergePlugin(Attributes const& attributes)
    : RankedPlugin(attributes)
{
}

int32_t LocalMergePlugin::getOutputDataTypes(
    DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    if (nbInputs != kInputCount || nbOutputs != kMergeOutputCount)
    {
        reportError("expects 1 input and 4 outputs, got %d and %d", nbInputs, nbOutputs);
        return -1;
    }
    if (!isActivationType(inputTypes[0]))
    {
        reportError("tokens must be FP32 or FP16, got %s", typeName(inputTypes[0]));
        return -1;
    }
    setMergeOutputTypes(inputTypes[0], sizeTensorType(mAttributes.sizeDtype), outputTypes);
    return 0;
}

int32_t LocalMergePlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
    nvinfer1::DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/, nvinfer1::DimsExprs* outputs,
    int32_t nbOutputs, nvinfer1::IExprBuilder& exprBuilder) noexcept
{
    if (nbInputs != kInputCount || nbOutputs != kMergeOutputCount || inputs[0].nbDims != 3)
    {
        reportError("expects one input tokens [B, 1+N, C] and 4 outputs");
        return -1;
    }
    nvinfer1::DimsExprs const& tokens = inputs[0];
    int64_t const patches = patchCount(mAttributes);
    if (tokens.d[1]->isConstant() && tokens.d[1]->getConstantValue() != 1 + patches)
    {
        reportError("tokens have %lld rows, expected 1 + grid_h*grid_w = %lld",
            static_cast<long long>(tokens.d[1]->getConstantValue()), static_cast<long long>(1 + patches));
        return -1;
    }
    try // IExprBuilder::declareSizeTensor is not declared noexcept
    {
        // With r of the W = N/k windows merged (k patches each), T' = 1 + N - (k-1)*r lies in [1 + N/k, 1 + N].
        // Upper bound (TensorRT allocates for it): the input token count. Optimum (TensorRT tunes the layers
        // after the merge for it): the middle of that range, half of the windows merged; for 2x2 windows
        // that is 5/8 of the tokens. A constant, as the optimum must not depend on a size tensor.
        int64_t const windowSize = int64_t{mAttributes.windowH} * mAttributes.windowW;
        int64_t const windows = patches / windowSize;
        nvinfer1::IDimensionExpr const* opt = exprBuilder.constant(1 + patches - (windowSize - 1) * (windows / 2));
        nvinfer1::IDimensionExpr const* newTokens = exprBuilder.declareSizeTensor(kNumTokens, *opt, *tokens.d[1]);
        if (newTokens == nullptr)
        {
            reportError("TensorRT refused the size tensor declaration");
            return -1;
        }
        setMergeOutputShapes(outputs, tokens.d[0], newTokens, tokens.d[2], exprBuilder.constant(patches));
        return 0;
    }
    catch (...)
    {
        reportError("getOutputShapes failed");
        return -1;
    }
}

bool LocalMergePlugin::supportsFormatCombination(
    int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    if (nbInputs != kInputCount || nbOutputs != kMergeOutputCount || pos < 0 || pos >= nbInputs + nbOutputs)
    {
        return false;
    }
    // TensorRT asks position by position and lets the answer for `pos` depend on inOut[0..pos-1] only.
    nvinfer1::PluginTensorDesc const& desc = inOut[pos].desc;
    if (pos == 0)
    {
        return desc.format == nvinfer1::TensorFormat::kLINEAR && isActivationType(desc.type);
    }
    return supportsMergeOutput(pos - kInputCount, desc, inOut[0].desc.type, sizeTensorType(mAttributes.sizeDtype));
}

size_t LocalMergePlugin::getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
    nvinfer1::DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept
{
    // The kernels' workspace only grows with the problem: size it for the profile's maximum shape.
    algm::LocalMergeParams params{};
    if (nbInputs != kInputCount)
    {
        return 0;
    }
    if (!makeParams(inputs[0].max, mAttributes, params))
    {
        reportError("cannot size the workspace for tokens of at most %s", describe(inputs[0].max).text);
        return 0;
    }
    size_t const kernels = algm::localMergeWorkspaceSize(params);
    return kernels == 0 ? 0 : kCountScratchBytes + kernels;
}

int32_t LocalMergePlugin::onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
    nvinfer1::PluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    if (!ranksMatch(in, nbInputs, out, nbOutputs))
    {
        return -1;
    }
    algm::LocalMergeParams params{};
    if (!makeParams(in[0].dims, mAttributes, params))
    {
        reportError("tokens %s do not match the %dx%d grid", describe(in[0].dims).text, mAttributes.gridH,
            mAttributes.gridW);
        return -1;
    }
    return 0;
}

int32_t LocalMergePlugin::enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
    nvinfer1::PluginTensorDesc const* /*outputDesc*/, void const* const* inputs, void* const* outputs, void* workspace,
    cudaStream_t stream) noexcept
{
    // The outputs are sized for the upper bound T' = T; the kernel writes them densely with T' (per-image
    // merging: the longest image's count, the others padded with size-0 tokens) as row stride and stores T' in
    // the size tensor, from which TensorRT learns the actual output shapes.
    algm::LocalMergeParams params{};
    if (!makeParams(inputDesc[0].dims, mAttributes, params))
    {
        reportError("tokens %s do not match the %dx%d grid", describe(inputDesc[0].dims).text, mAttributes.gridH,
            mAttributes.gridW);
        return -1;
    }
    if (workspace == nullptr)
    {
        reportError("enqueue got no workspace (getWorkspaceSize could not size it for these shapes)");
        return -1;
    }
    return launchResult(launchMerge(sizeTensorType(mAttributes.sizeDtype), outputs[kNumTokens], workspace, stream,
        [&](int64_t* count, void* kernelWorkspace) {
            return algm::cuda::localMerge(toKernelType(inputDesc[0].type), inputs[0], outputs[kMerged],
                static_cast<float*>(outputs[kMergedSizes]), static_cast<int32_t*>(outputs[kMergedMap]), count, params,
                kernelWorkspace, stream);
        }));
}

} // namespace algm::trt
