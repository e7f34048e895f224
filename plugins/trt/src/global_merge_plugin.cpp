// algm::GlobalMerge (GBM): bipartite merging with the adaptive threshold. docs/plugin-ops.md.
// The plugin is private to this file; the library reaches it through globalMergeCreator().
#include "global_merge_plugin.h"

#include "merge_plugin.h"
#include "plugin_creator.h"
#include "tensors.h"

#include <array>
#include <optional>
#include <string>
#include <vector>

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
};

struct GlobalMergeAttributes
{
    int32_t layerNumber{}; // 1-based block number: divides the std term of the threshold
    int32_t perImage{};    // 1: per-image merging; 0 (also when the field is absent): the published batch rule
    int32_t sizeDtype{contract::kSizeDtypeDefault}; // ONNX code of the size tensor's type
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

class GlobalMergePlugin final : public MergePlugin<GlobalMergePlugin, GlobalMergeAttributes>
{
public:
    static constexpr std::array<int32_t, 3> kInputRanks{3, 2, 2};
    static constexpr char kShapes[]
        = "tokens [B, T, C], sizes [B, T], token map [B, N] and outputs of ranks 3, 2, 2, 0";
    static constexpr char const* kName = contract::kGlobalMerge;

    using MergePlugin::MergePlugin;

    // The fields createPlugin() needs, for the creator's getFieldNames().
    static std::vector<nvinfer1::PluginField> fieldNames()
    {
        return withMergeFieldNames({fieldName(kLayerNumber, PluginFieldType::kINT32)});
    }

    // The attributes in `fields` if they are complete and valid; else nullopt and the reason in `error`.
    static std::optional<Attributes> parse(nvinfer1::PluginFieldCollection const& fields, std::string& error)
    {
        // Types and presence here; values by the validation shared with the ONNX Runtime ops.
        FieldReader reader(fields);
        algm::attributes::GlobalMerge read;
        reader.readInteger(kLayerNumber, read.layerNumber);
        if (!readMergeFields(reader, read, error))
        {
            return std::nullopt;
        }
        // Narrowing is exact: validate() keeps every value within int32.
        return Attributes{static_cast<int32_t>(read.layerNumber), static_cast<int32_t>(read.perImage),
            static_cast<int32_t>(read.sizeDtype)};
    }

    // getFieldsToSerialize(): the attributes as fields pointing at `attributes`.
    static std::vector<nvinfer1::PluginField> serializedFields(Attributes const& attributes)
    {
        return withMergeFields({valueField(kLayerNumber, attributes.layerNumber)}, attributes);
    }

private:
    // MergePlugin's hooks (merge_plugin.h).
    friend class MergePlugin<GlobalMergePlugin, GlobalMergeAttributes>;
    using Params = algm::GlobalMergeParams;
    static constexpr bool kShapesKnownOnShapeChange = false; // T is data-dependent behind an earlier merge

    bool inputTypesSupported(DataType const* inputTypes) const noexcept
    {
        if (!isActivationType(inputTypes[kTokens]) || inputTypes[kSizes] != DataType::kFLOAT
            || inputTypes[kTokenMap] != DataType::kINT32)
        {
            reportError("expects FP32/FP16 tokens, FP32 sizes and an INT32 token map, got %s, %s, %s",
                typeName(inputTypes[kTokens]), typeName(inputTypes[kSizes]), typeName(inputTypes[kTokenMap]));
            return false;
        }
        return true;
    }

    bool supportsInput(int32_t pos, nvinfer1::PluginTensorDesc const& desc) const noexcept
    {
        return isLinearOf(desc, pos == kSizes ? DataType::kFLOAT : DataType::kINT32);
    }

    std::optional<SizeTensorBounds> sizeTensorBounds(
        nvinfer1::DimsExprs const* inputs, nvinfer1::IExprBuilder& exprBuilder) const
    {
        // T' = T - r with r < ceil(T/2). The input T is itself data-dependent behind an earlier merge, and the
        // optimum must not depend on a size tensor, so both bounds come from the static patch count N:
        // upper = 1 + N >= T (TensorRT allocates for it), optimum = ceil((1 + N) / 2) (TensorRT tunes the
        // layers after the merge for it): about the CLAP optimum (5/8 of the tokens for 2x2 windows) less the
        // ~1/6 a GBM typically merges. Only tuning depends on the optimum; check it against measured
        // token_counts.
        nvinfer1::IDimensionExpr const* patches = inputs[kTokenMap].d[1];
        nvinfer1::IDimensionExpr const* upper
            = exprBuilder.operation(nvinfer1::DimensionOperation::kSUM, *patches, *exprBuilder.constant(1));
        nvinfer1::IDimensionExpr const* opt
            = exprBuilder.operation(nvinfer1::DimensionOperation::kCEIL_DIV, *upper, *exprBuilder.constant(2));
        return SizeTensorBounds{opt, upper, patches};
    }

    bool workspaceParams(nvinfer1::DynamicPluginTensorDesc const* inputs, Params& params) const noexcept
    {
        // Sized for the profile's largest batch, channels and patch count, and for T = 1 + N: the bound of a
        // data-dependent T, whose own maximum TensorRT may not know.
        nvinfer1::Dims const& tokens = inputs[kTokens].max;
        nvinfer1::Dims const& map = inputs[kTokenMap].max;
        params.layerNumber = mAttributes.layerNumber;
        if (!toExtent(tokens.d[0], params.batch) || !toExtent(tokens.d[2], params.channels)
            || !toExtent(map.d[1], params.patches) || !toExtent(map.d[1] + 1, params.tokens))
        {
            reportError("cannot size the workspace for tokens of at most %s and a token map of at most %s",
                describe(tokens).text, describe(map).text);
            return false;
        }
        return true;
    }

    static size_t kernelWorkspaceSize(Params const& params) noexcept
    {
        return algm::globalMergeWorkspaceSize(params);
    }

    bool kernelParams(nvinfer1::PluginTensorDesc const* inputDesc, Params& params) const noexcept
    {
        if (!makeParams(inputDesc, mAttributes, params))
        {
            reportError("inconsistent inputs: tokens %s, sizes %s, token map %s",
                describe(inputDesc[kTokens].dims).text, describe(inputDesc[kSizes].dims).text,
                describe(inputDesc[kTokenMap].dims).text);
            return false;
        }
        return true;
    }

    static algm::Status launch(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs,
        void* const* outputs, int64_t* count, Params const& params, void* kernelWorkspace, cudaStream_t stream) noexcept
    {
        return algm::cuda::globalMerge(toKernelType(inputDesc[kTokens].type), inputs[kTokens],
            static_cast<float const*>(inputs[kSizes]), static_cast<int32_t const*>(inputs[kTokenMap]), outputs[kMerged],
            static_cast<float*>(outputs[kMergedSizes]), static_cast<int32_t*>(outputs[kMergedMap]), count, params,
            kernelWorkspace, stream);
    }
};

} // namespace

nvinfer1::IPluginCreatorV3One& globalMergeCreator()
{
    return creatorOf<GlobalMergePlugin>();
}

} // namespace algm::trt
