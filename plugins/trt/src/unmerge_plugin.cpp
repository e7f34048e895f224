// algm::Unmerge: spreads per-token values back onto the patch grid. docs/plugin-ops.md.
// The plugin is private to this file; the library reaches it through unmergeCreator().
#include "unmerge_plugin.h"

#include "plugin_creator.h"
#include "ranked_plugin.h"
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

// Inputs; the one output, patch_values [B, N, K], follows them in supportsFormatCombination's numbering.
enum Input : int32_t
{
    kValues = 0,   // [B, M, K], M data-dependent behind a merge
    kTokenMap = 1, // [B, N] INT32, values in [0, M)
};
constexpr int32_t kOutputCount = 1;

// The kernel parameters for values [B, M, K] (M >= 1) and a token map [B, N]; false for other shapes.
bool makeParams(nvinfer1::PluginTensorDesc const* in, algm::UnmergeParams& params) noexcept
{
    nvinfer1::Dims const& values = in[kValues].dims;
    nvinfer1::Dims const& map = in[kTokenMap].dims;
    if (map.d[0] != values.d[0] || values.d[1] < 1)
    {
        return false;
    }
    return toExtent(values.d[0], params.batch) && toExtent(values.d[1], params.tokens)
        && toExtent(values.d[2], params.width) && toExtent(map.d[1], params.patches);
}

// Unmerge has no attributes besides the registry keys the parser consumes.
struct UnmergeAttributes
{
};

class UnmergePlugin final : public RankedPlugin<UnmergePlugin, UnmergeAttributes>
{
public:
    static constexpr std::array<int32_t, 2> kInputRanks{3, 2};
    static constexpr std::array<int32_t, 1> kOutputRanks{3};
    static constexpr char kShapes[] = "values [B, M, K], a token map [B, N] and one output [B, N, K]";
    static constexpr char const* kName = contract::kUnmerge;

    using RankedPlugin::RankedPlugin;

    // The fields createPlugin() needs, for the creator's getFieldNames(): none.
    static std::vector<nvinfer1::PluginField> fieldNames()
    {
        return {};
    }

    // Always succeeds: there is nothing to read.
    static std::optional<Attributes> parse(nvinfer1::PluginFieldCollection const& /*fields*/, std::string& /*error*/)
    {
        return Attributes{};
    }

    // getFieldsToSerialize(): the attributes as fields pointing at `attributes`.
    static std::vector<nvinfer1::PluginField> serializedFields(Attributes const& /*attributes*/)
    {
        return {};
    }

    // IPluginV3OneBuild (no workspace: the default getWorkspaceSize() returns 0)
    int32_t getOutputDataTypes(
        DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept override
    {
        if (nbInputs != kInputCount || nbOutputs != kOutputCount)
        {
            reportError("expects 2 inputs and 1 output, got %d and %d", nbInputs, nbOutputs);
            return -1;
        }
        if (!isActivationType(inputTypes[kValues]) || inputTypes[kTokenMap] != DataType::kINT32)
        {
            reportError("expects FP32/FP16 values and an INT32 token map, got %s and %s", typeName(inputTypes[kValues]),
                typeName(inputTypes[kTokenMap]));
            return -1;
        }
        outputTypes[0] = inputTypes[kValues];
        return 0;
    }

    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
        nvinfer1::DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/, nvinfer1::DimsExprs* outputs,
        int32_t nbOutputs, nvinfer1::IExprBuilder& /*exprBuilder*/) noexcept override
    {
        if (nbInputs != kInputCount || nbOutputs != kOutputCount || inputs[kValues].nbDims != 3
            || inputs[kTokenMap].nbDims != 2)
        {
            reportError("expects values [B, M, K], a token map [B, N] and one output");
            return -1;
        }
        outputs[0].nbDims = 3;
        outputs[0].d[0] = inputs[kValues].d[0];
        outputs[0].d[1] = inputs[kTokenMap].d[1];
        outputs[0].d[2] = inputs[kValues].d[2];
        return 0;
    }

    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept override
    {
        if (nbInputs != kInputCount || nbOutputs != kOutputCount || pos < 0 || pos >= nbInputs + nbOutputs)
        {
            return false;
        }
        // TensorRT asks position by position and lets the answer for `pos` depend on inOut[0..pos-1] only.
        nvinfer1::PluginTensorDesc const& desc = inOut[pos].desc;
        switch (pos)
        {
        case kValues: return desc.format == nvinfer1::TensorFormat::kLINEAR && isActivationType(desc.type);
        case kTokenMap: return isLinearOf(desc, DataType::kINT32);
        default: return isLinearOf(desc, inOut[kValues].desc.type);
        }
    }

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override
    {
        // Only ranks: M may be data-dependent and change between inferences without a new onShapeChange call,
        // which is why enqueue() derives the kernel parameters from its own tensor descriptions.
        if (!ranksMatch(in, nbInputs, out, nbOutputs))
        {
            return -1;
        }
        return 0;
    }

    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* /*outputDesc*/,
        void const* const* inputs, void* const* outputs, void* /*workspace*/, cudaStream_t stream) noexcept override
    {
        algm::UnmergeParams params{};
        if (!makeParams(inputDesc, params))
        {
            reportError("inconsistent inputs: values %s, token map %s", describe(inputDesc[kValues].dims).text,
                describe(inputDesc[kTokenMap].dims).text);
            return -1;
        }
        return launchResult(algm::cuda::unmerge(toKernelType(inputDesc[kValues].type), inputs[kValues],
            static_cast<int32_t const*>(inputs[kTokenMap]), outputs[0], params, stream));
    }
};

} // namespace

nvinfer1::IPluginCreatorV3One& unmergeCreator()
{
    return creatorOf<UnmergePlugin>();
}

} // namespace algm::trt
