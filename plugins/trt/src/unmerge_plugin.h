// algm::Unmerge: spreads per-token values back onto the patch grid. docs/plugin-ops.md.
#pragma once

#include "fields.h"
#include "ranked_plugin.h"

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace algm::trt
{

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

    // The fields createPlugin() needs, for the creator's getFieldNames(): none.
    static std::vector<nvinfer1::PluginField> fieldNames();

    // Always succeeds: there is nothing to read.
    static std::optional<Attributes> parse(nvinfer1::PluginFieldCollection const& fields, std::string& error);

    explicit UnmergePlugin(Attributes const& attributes);

    // getFieldsToSerialize(): the attributes as fields pointing at `attributes`.
    static std::vector<nvinfer1::PluginField> serializedFields(Attributes const& attributes);

    // IPluginV3OneBuild (no workspace: the default getWorkspaceSize() returns 0)
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs, nvinfer1::DataType const* inputTypes,
        int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
};

} // namespace algm::trt
