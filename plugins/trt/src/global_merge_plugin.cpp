#include "global_merge_plugin.h"

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

constexpr char const* kLayerNumber = contract::attr::layer_number;

enum Input : int32_t
{
    kTokens = 0,   // [B, T, C], T data-dependent when an earlier merge produced the tokens
    kSizes = 1,    // [B, T] FP32
    kTokenMap = 2, // [B, N] INT32
    kInputCount = 3,
};

// The kernel parameters for these input shapes; false unless they are tokens [B, T, C], sizes [B, T],
// token map [B, N] with 1 <= T <= 1 + N (merging only ever removes tokens).
bool makeParams(nvinfer1::PluginTensorDesc const* in, GlobalMergeAttributes const& attributes,
    algm::GlobalMergeParams& params) noexcept
{
    nvinfer1::Dims const& tokens = in[kTokens].dims;
    nvinfer1::Dims const& sizes = in[kSizes].dims;
    nvinfer1::Dims const& map = in[kTokenMap].dims;
    if (sizes.d[0] != tokens.d[0] || sizes.d[1] != tokens.d[1] || map.d[0] != tokens.d[0] || tokens.d[1] < 1
        || tokens.d[1] > 1 + map.d[1])
    {
        return false;
    }
    params.layerNumber = attributes.layerNumber;
    params.perImage = attributes.perImage;
    return toExtent(tokens.d[0], params.batch) && toExtent(tokens.d[1], params.tokens)
        && toExtent(tokens.d[2], params.channels) && toExtent(map.d[1], params.patches);
}
} // namespace

std::vector<nvinfer1::PluginField> GlobalMergePlugin::fieldNames()
{
    return {fieldName(kLayerNumber, PluginFieldType::kINT32),
        fieldName(contract::attr::per_image, PluginFieldType::kINT32),
        fieldName(contract::kSizeDtype, PluginFieldType::kINT32)};
}

std::optional<GlobalMergeAttributes> GlobalMergePlugin::parse(
    nvinfer1::PluginFieldCollection const& fields, std::string& error)
{
    // Types and presence here; values by the validation shared with the ONNX Runtime ops.
    FieldReader reader(fields);
    algm::attributes::GlobalMerge read;
    reader.readInteger(kLayerNumber, read.layerNumber);
    reader.readOptionalInteger(contract::attr::per_image, read.perImage);
    reader.readOptionalInteger(contract::kSizeDtype, read.sizeDtype);
    error = reader.ok() ? algm::attributes::validate(read) : reader.error();
    if (!error.empty())
    {
        return std::nullopt;
    }
    // Narrowing is exact: validate() keeps every value within int32.
    return Attributes{static_cast<int32_t>(read.layerNumber), static_cast<int32_t>(read.perImage),
        static_cast<int32_t>(read.sizeDtype)};
}

std::vector<nvinfer1::PluginField> GlobalMergePlugin::serializedFields(Attributes const& attributes)
{
    return {valueField(kLayerNumber, attributes.layerNumber),
        valueField(contract::attr::per_image, attributes.perImage),
        valueField(contract::kSizeDtype, attributes.sizeDtype)};
}

GlobalMergePlugin::GlobalMergePlugin(Attributes const& attributes)
    : RankedPlugin(attributes)
{
}

int32_t GlobalMergePlugin::getOutputDataTypes(
    DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    if (nbInputs != kInputCount || nbOutputs != kMergeOutputCount)
    {
        reportError("expects 3 inputs and 4 outputs, got %d and %d", nbInputs, nbOutputs);
        return -1;
    }
    if (!isActivationType(inputTypes[kTokens]) || inputTypes[kSizes] != DataType::kFLOAT
        || inputTypes[kTokenMap] != DataType::kINT32)
    {
        reportError("expects FP32/FP16 tokens, FP32 sizes and an INT32 token map, got %s, %s, %s",
            typeName(inputTypes[kTokens]), typeName(inputTypes[kSizes]), typeName(inputTypes[kTokenMap]));
        return -1;
    }
    setMergeOutputTypes(inputTypes[kTokens], sizeTensorType(mAttributes.sizeDtype), outputTypes);
    return 0;
}

int32_t GlobalMergePlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
    nvinfer1::DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/, nvinfer1::DimsExprs* outputs,
    int32_t nbOutputs, nvinfer1::IExprBuilder& exprBuilder) noexcept
{
    if (nbInputs != kInputCount || nbOutputs != kMergeOutputCount || inputs[kTokens].nbDims != 3
        || inputs[kSizes].nbDims != 2 || inputs[kTokenMap].nbDims != 2)
    {
        reportError("expects tokens [B, T, C], sizes [B, T], token map [B, N] and 4 outputs");
        return -1;
    }
    nvinfer1::DimsExprs const& tokens = inputs[kTokens];
    nvinfer1::IDimensionExpr const* patches = inputs[kTokenMap].d[1];
    try // IExprBuilder::declareSizeTensor is not declared noexcept
    {
        // T' = T - r with r < ceil(T/2). The input T is itself data-dependent behind an earlier merge, and the
        // optimum must not depend on a size tensor, so both bounds come from the static patch count N:
        // upper = 1 + N >= T (TensorRT allocates for it), optimum = ceil((1 + N) / 2) (TensorRT tunes the
        // layers after the merge for it): about the CLAP optimum (5/8 of the tokens for 2x2 windows) less the
        // ~1/6 a GBM typically merges. Only tuning depends on the optimum; check it against measured
        // token_counts.
        nvinfer1::IDimensionExpr const* upper
            = exprBuilder.operation(nvinfer1::DimensionOperation::kSUM, *patches, *exprBuilder.constant(1));
        nvinfer1::IDimensionExpr const* opt
            = exprBuilder.operation(nvinfer1::DimensionOperation::kCEIL_DIV, *upper, *exprBuilder.constant(2));
        nvinfer1::IDimensionExpr const* newTokens = exprBuilder.declareSizeTensor(kNumTokens, *opt, *upper);
        if (newTokens == nullptr)
        {
            reportError("TensorRT refused the size tensor declaration");
            return -1;
        }
        setMergeOutputShapes(outputs, tokens.d[0], newTokens, tokens.d[2], patches);
        return 0;
    }
    catch (...)
    {
        reportError("getOutputShapes failed");
        return -1;
    }
}

bool GlobalMergePlugin::supportsFormatCombination(
    int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    if (nbInputs != kInputCount || nbOutputs != kMergeOutputCount || pos < 0 || pos >= nbInputs + nbOutputs)
    {
        return false;
    }
    // TensorRT asks position by position and lets the answer for `pos` depend on inOut[0..pos-1] only.
    nvinfer1::PluginTensorDesc const& desc = inOut[pos].desc;
    switch (pos)
    {
    case kTokens: return desc.format == nvinfer1::TensorFormat::kLINEAR && isActivationType(desc.type);
    case kSizes: return isLinearOf(desc, DataType::kFLOAT);
    case kTokenMap: return isLinearOf(desc, DataType::kINT32);
    default:
        return supportsMergeOutput(
            pos - kInputCount, desc, inOut[kTokens].desc.type, sizeTensorType(mAttributes.sizeDtype));
    }
}

size_t GlobalMergePlugin::getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
    nvinfer1::DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept
{
    if (nbInputs != kInputCount)
    {
        return 0;
    }
    // Sized for the profile's largest batch, channels and patch count, and for T = 1 + N: the bound of a
    // data-dependent T, whose own maximum TensorRT may not know.
    nvinfer1::Dims const& tokens = inputs[kTokens].max;
    nvinfer1::Dims const& map = inputs[kTokenMap].max;
    algm::GlobalMergeParams params{};
    params.layerNumber = mAttributes.layerNumber;
    if (!toExtent(tokens.d[0], params.batch) || !toExtent(tokens.d[2], params.channels)
        || !toExtent(map.d[1], params.patches) || !toExtent(map.d[1] + 1, params.tokens))
    {
        reportError("cannot size the workspace for tokens of at most %s and a token map of at most %s",
            describe(tokens).text, describe(map).text);
        return 0;
    }
    size_t const kernels = algm::globalMergeWorkspaceSize(params);
    return kernels == 0 ? 0 : kCountScratchBytes + kernels;
}

int32_t GlobalMergePlugin::onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
    nvinfer1::PluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    // Only ranks: T may be data-dependent and change between inferences without a new onShapeChange call,
    // which is why enqueue() derives the kernel parameters from its own tensor descriptions.
    if (!ranksMatch(in, nbInputs, out, nbOutputs))
    {
        return -1;
    }
    return 0;
}

int32_t GlobalMergePlugin::enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
    nvinfer1::PluginTensorDesc const* /*outputDesc*/, void const* const* inputs, void* const* outputs, void* workspace,
    cudaStream_t stream) noexcept
{
    // The outputs are sized for the upper bound 1 + N >= T'; the kernel writes them densely with T' (per-image
    // merging: the longest image's count, the others padded with size-0 tokens) as row stride and stores T' in
    // the size tensor, from which TensorRT learns the actual output shapes.
    algm::GlobalMergeParams params{};
    if (!makeParams(inputDesc, mAttributes, params))
    {
        reportError("inconsistent inputs: tokens %s, sizes %s, token map %s", describe(inputDesc[kTokens].dims).text,
            describe(inputDesc[kSizes].dims).text, describe(inputDesc[kTokenMap].dims).text);
        return -1;
    }
    if (workspace == nullptr)
    {
        reportError("enqueue got no workspace (getWorkspaceSize could not size it for these shapes)");
        return -1;
    }
    return launchResult(launchMerge(sizeTensorType(mAttributes.sizeDtype), outputs[kNumTokens], workspace, stream,
        [&](int64_t* count, void* kernelWorkspace) {
            return algm::cuda::globalMerge(toKernelType(inputDesc[kTokens].type), inputs[kTokens],
                static_cast<float const*>(inputs[kSizes]), static_cast<int32_t const*>(inputs[kTokenMap]),
                outputs[kMerged], static_cast<float*>(outputs[kMergedSizes]),
                static_cast<int32_t*>(outputs[kMergedMap]), count, params, kernelWorkspace, stream);
        }));
}

} // namespace algm::trt
