// algm::LocalMerge (CLAP): merges the most similar windows of the patch grid. docs/plugin-ops.md.
#pragma once

#include "fields.h"
#include "plugin_base.h"

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
    int32_t sizeDtype{contract::kSizeDtypeDefault}; // ONNX code of the size tensor's type
};

class LocalMergePlugin final : public PluginBase
{
public:
    using Attributes = LocalMergeAttributes;
    static constexpr char const* kName = contract::kLocalMerge;

    // The fields createPlugin() needs, for the creator's getFieldNames().
    static std::vector<nvinfer1::PluginField> fieldNames();

    // The attributes in `fields` if they are complete and valid; else nullopt and the reason in `error`.
    static std::optional<Attributes> parse(nvinfer1::PluginFieldCollection const& fields, std::string& error);

    explicit LocalMergePlugin(Attributes const& attributes);

    // IPluginV3
    nvinfer1::IPluginV3* clone() noexcept override;

    // IPluginV3OneCore
    char const* getPluginName() const noexcept override;

    // IPluginV3OneBuild
    int32_t getNbOutputs() const noexcept override;
    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
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
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

private:
    Attributes mAttributes;
    FieldCollection mSerialized;
};

} // namespace algm::trt
