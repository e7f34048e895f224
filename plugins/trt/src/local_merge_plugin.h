// algm::LocalMerge (CLAP): merges the most similar windows of the patch grid. docs/plugin-ops.md.
#pragma once

#include "fields.h"
#include "ranked_plugin.h"

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace algm::trt
{

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

class LocalMergePlugin final : public RankedPlugin<LocalMergePlugin, LocalMergeAttributes>
{
public:
    static constexpr std::array<int32_t, 1> kInputRanks{3};
    static constexpr std::array<int32_t, 4> kOutputRanks{3, 2, 2, 0};
    static constexpr char kShapes[] = "tokens [B, 1+N, C] and outputs of ranks 3, 2, 2, 0";
    static constexpr char const* kName = contract::kLocalMerge;

    // The fields createPlugin() needs, for the creator's getFieldNames().
    static std::vector<nvinfer1::PluginField> fieldNames();

    // The attributes in `fields` if they are complete and valid; else nullopt and the reason in `error`.
    static std::optional<Attributes> parse(nvinfer1::PluginFieldCollection const& fields, std::string& error);

    explicit LocalMergePlugin(Attributes const& attributes);

    // getFieldsToSerialize(): the attributes as fields pointing at `attributes`.
    static std::vector<nvinfer1::PluginField> serializedFields(Attributes const& attributes);

    // IPluginV3OneBuild
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
        nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept override;
    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
};

} // namespace algm::trt
