// algm::GlobalMerge (GBM): bipartite merging with the adaptive threshold. docs/plugin-ops.md.
#pragma once

#include "fields.h"
#include "merge_plugin.h"

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace algm::trt
{

struct GlobalMergeAttributes
{
    int32_t layerNumber{}; // 1-based block number: divides the std term of the threshold
    int32_t perImage{};    // 1: per-image merging; 0 (also when the field is absent): the published batch rule
    int32_t sizeDtype{contract::kSizeDtypeDefault}; // ONNX code of the size tensor's type
};

class GlobalMergePlugin final : public MergePlugin<GlobalMergePlugin, GlobalMergeAttributes>
{
public:
    static constexpr std::array<int32_t, 3> kInputRanks{3, 2, 2};
    static constexpr char kShapes[]
        = "tokens [B, T, C], sizes [B, T], token map [B, N] and outputs of ranks 3, 2, 2, 0";
    static constexpr char const* kName = contract::kGlobalMerge;

    // The fields createPlugin() needs, for the creator's getFieldNames().
    static std::vector<nvinfer1::PluginField> fieldNames();

    // The attributes in `fields` if they are complete and valid; else nullopt and the reason in `error`.
    static std::optional<Attributes> parse(nvinfer1::PluginFieldCollection const& fields, std::string& error);

    using MergePlugin::MergePlugin;

    // getFieldsToSerialize(): the attributes as fields pointing at `attributes`.
    static std::vector<nvinfer1::PluginField> serializedFields(Attributes const& attributes);

private:
    // MergePlugin's hooks (merge_plugin.h).
    friend class MergePlugin<GlobalMergePlugin, GlobalMergeAttributes>;
    using Params = algm::GlobalMergeParams;
    static constexpr bool kShapesKnownOnShapeChange = false; // T is data-dependent behind an earlier merge

    bool inputTypesSupported(nvinfer1::DataType const* inputTypes) const noexcept;
    bool supportsInput(int32_t pos, nvinfer1::PluginTensorDesc const& desc) const noexcept;
    std::optional<SizeTensorBounds> sizeTensorBounds(
        nvinfer1::DimsExprs const* inputs, nvinfer1::IExprBuilder& exprBuilder) const;
    bool workspaceParams(nvinfer1::DynamicPluginTensorDesc const* inputs, Params& params) const noexcept;
    static size_t kernelWorkspaceSize(Params const& params) noexcept;
    bool kernelParams(nvinfer1::PluginTensorDesc const* inputDesc, Params& params) const noexcept;
    static algm::Status launch(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs,
        void* const* outputs, int64_t* count, Params const& params, void* kernelWorkspace,
        cudaStream_t stream) noexcept;
};

} // namespace algm::trt
