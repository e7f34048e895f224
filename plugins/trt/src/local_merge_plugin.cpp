// algm::LocalMerge (CLAP): merges the most similar windows of the patch grid. docs/plugin-ops.md.
// The plugin is private to this file; the library reaches it through localMergeCreator().
#include "local_merge_plugin.h"

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

constexpr char const* kGridH = contract::attr::grid_h;
constexpr char const* kGridW = contract::attr::grid_w;
constexpr char const* kWindowH = contract::attr::window_h;
constexpr char const* kWindowW = contract::attr::window_w;
constexpr char const* kThreshold = contract::attr::threshold;

struct LocalMergeAttributes
{
    int32_t gridH{};
    int32_t gridW{};
    int32_t windowH{};
    int32_t windowW{};
    float threshold{};
    int32_t perImage{}; // 1: per-image merging; 0 (also when the field is absent): the published batch rule
    int32_t sizeDtype{contract::kSizeDtypeDefault}; // ONNX code of the size tensor's type
};

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

class LocalMergePlugin final : public MergePlugin<LocalMergePlugin, LocalMergeAttributes>
{
public:
    static constexpr std::array<int32_t, 1> kInputRanks{3};
    static constexpr char kShapes[] = "tokens [B, 1+N, C] and outputs of ranks 3, 2, 2, 0";
    static constexpr char const* kName = contract::kLocalMerge;

    using MergePlugin::MergePlugin;

    // The fields createPlugin() needs, for the creator's getFieldNames().
    static std::vector<nvinfer1::PluginField> fieldNames()
    {
        return withMergeFieldNames({fieldName(kGridH, PluginFieldType::kINT32),
            fieldName(kGridW, PluginFieldType::kINT32), fieldName(kWindowH, PluginFieldType::kINT32),
            fieldName(kWindowW, PluginFieldType::kINT32), fieldName(kThreshold, PluginFieldType::kFLOAT32)});
    }

    // The attributes in `fields` if they are complete and valid; else nullopt and the reason in `error`.
    static std::optional<Attributes> parse(nvinfer1::PluginFieldCollection const& fields, std::string& error)
    {
        // Types and presence here; values by the validation shared with the ONNX Runtime ops.
        FieldReader reader(fields);
        algm::attributes::LocalMerge read;
        reader.readInteger(kGridH, read.gridH);
        reader.readInteger(kGridW, read.gridW);
        reader.readInteger(kWindowH, read.windowH);
        reader.readInteger(kWindowW, read.windowW);
        reader.readFloat32(kThreshold, read.threshold);
        if (!readMergeFields(reader, read, error))
        {
            return std::nullopt;
        }
        // Narrowing is exact: validate() keeps every value within int32.
        return Attributes{static_cast<int32_t>(read.gridH), static_cast<int32_t>(read.gridW),
            static_cast<int32_t>(read.windowH), static_cast<int32_t>(read.windowW), read.threshold,
            static_cast<int32_t>(read.perImage), static_cast<int32_t>(read.sizeDtype)};
    }

    // getFieldsToSerialize(): the attributes as fields pointing at `attributes`.
    static std::vector<nvinfer1::PluginField> serializedFields(Attributes const& attributes)
    {
        return withMergeFields({valueField(kGridH, attributes.gridH), valueField(kGridW, attributes.gridW),
                                   valueField(kWindowH, attributes.windowH), valueField(kWindowW, attributes.windowW),
                                   valueField(kThreshold, attributes.threshold)},
            attributes);
    }

private:
    // MergePlugin's hooks (merge_plugin.h).
    friend class MergePlugin<LocalMergePlugin, LocalMergeAttributes>;
    using Params = algm::LocalMergeParams;
    static constexpr bool kShapesKnownOnShapeChange = true; // the token count is 1 + grid_h*grid_w

    bool inputTypesSupported(DataType const* inputTypes) const noexcept
    {
        if (!isActivationType(inputTypes[0]))
        {
            reportError("tokens must be FP32 or FP16, got %s", typeName(inputTypes[0]));
            return false;
        }
        return true;
    }

    std::optional<SizeTensorBounds> sizeTensorBounds(
        nvinfer1::DimsExprs const* inputs, nvinfer1::IExprBuilder& exprBuilder) const
    {
        nvinfer1::DimsExprs const& tokens = inputs[0];
        int64_t const patches = patchCount(mAttributes);
        if (tokens.d[1]->isConstant() && tokens.d[1]->getConstantValue() != 1 + patches)
        {
            reportError("tokens have %lld rows, expected 1 + grid_h*grid_w = %lld",
                static_cast<long long>(tokens.d[1]->getConstantValue()), static_cast<long long>(1 + patches));
            return std::nullopt;
        }
        // With r of the W = N/k windows merged (k patches each), T' = 1 + N - (k-1)*r lies in [1 + N/k, 1 + N].
        // Upper bound (TensorRT allocates for it): the input token count. Optimum (TensorRT tunes the layers
        // after the merge for it): the middle of that range, half of the windows merged; for 2x2 windows
        // that is 5/8 of the tokens. A constant, as the optimum must not depend on a size tensor.
        int64_t const windowSize = int64_t{mAttributes.windowH} * mAttributes.windowW;
        int64_t const windows = patches / windowSize;
        return SizeTensorBounds{exprBuilder.constant(1 + patches - (windowSize - 1) * (windows / 2)), tokens.d[1],
            exprBuilder.constant(patches)};
    }

    bool workspaceParams(nvinfer1::DynamicPluginTensorDesc const* inputs, Params& params) const noexcept
    {
        if (!makeParams(inputs[0].max, mAttributes, params))
        {
            reportError("cannot size the workspace for tokens of at most %s", describe(inputs[0].max).text);
            return false;
        }
        return true;
    }

    static size_t kernelWorkspaceSize(Params const& params) noexcept
    {
        return algm::localMergeWorkspaceSize(params);
    }

    bool kernelParams(nvinfer1::PluginTensorDesc const* inputDesc, Params& params) const noexcept
    {
        if (!makeParams(inputDesc[0].dims, mAttributes, params))
        {
            reportError("tokens %s do not match the %dx%d grid", describe(inputDesc[0].dims).text, mAttributes.gridH,
                mAttributes.gridW);
            return false;
        }
        return true;
    }

    static algm::Status launch(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs,
        void* const* outputs, int64_t* count, Params const& params, void* kernelWorkspace, cudaStream_t stream) noexcept
    {
        return algm::cuda::localMerge(toKernelType(inputDesc[0].type), inputs[0], outputs[kMerged],
            static_cast<float*>(outputs[kMergedSizes]), static_cast<int32_t*>(outputs[kMergedMap]), count, params,
            kernelWorkspace, stream);
    }
};

} // namespace

nvinfer1::IPluginCreatorV3One& localMergeCreator()
{
    return creatorOf<LocalMergePlugin>();
}

} // namespace algm::trt
