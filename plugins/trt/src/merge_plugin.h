// What LocalMerge and GlobalMerge share on top of RankedPlugin: the four merge outputs (merge_outputs.h) with
// their types, formats and shapes around the declared size tensor, the workspace with the count scratch in
// front, the prologue of onShapeChange and enqueue, and the optional fields per_image and size_dtype (`Attrs`
// holds them as int32 perImage and sizeDtype). Tokens are input 0 of both merges.
//
// `Derived` provides, besides what RankedPlugin asks for (kInputRanks, kShapes, kName, ...), these hooks; each
// reports its own error before returning false or nullopt:
//   using Params = algm::<Op>Params;                                       the kernels' parameters
//   static constexpr bool kShapesKnownOnShapeChange;                       whether onShapeChange may check them
//   bool inputTypesSupported(DataType const* inputTypes) const;            getOutputDataTypes
//   bool supportsInput(int32_t pos, PluginTensorDesc const& desc) const;   inputs 1.. (only with several inputs)
//   std::optional<SizeTensorBounds> sizeTensorBounds(DimsExprs const* inputs, IExprBuilder&) const;
//   bool workspaceParams(DynamicPluginTensorDesc const* inputs, Params&) const;  for the profile's maximum
//   static size_t kernelWorkspaceSize(Params const&);
//   bool kernelParams(PluginTensorDesc const* inputDesc, Params&) const;   for these tensors
//   static algm::Status launch(PluginTensorDesc const* inputDesc, void const* const* inputs,
//       void* const* outputs, int64_t* count, Params const&, void* kernelWorkspace, cudaStream_t);
#pragma once

#include "algm/attributes.h"
#include "fields.h"
#include "merge_outputs.h"
#include "ranked_plugin.h"
#include "tensors.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace algm::trt
{

// The size tensor's declaration (IExprBuilder::declareSizeTensor): optimum and upper bound of T', and the
// patch count N of the token map output.
struct SizeTensorBounds
{
    nvinfer1::IDimensionExpr const* opt;
    nvinfer1::IDimensionExpr const* upper;
    nvinfer1::IDimensionExpr const* patches;
};

template <typename Derived, typename Attrs>
class MergePlugin : public RankedPlugin<Derived, Attrs>
{
    using Base = RankedPlugin<Derived, Attrs>;

public:
    static constexpr std::array<int32_t, kMergeOutputCount> kOutputRanks{3, 2, 2, 0};

    explicit MergePlugin(Attrs const& attributes)
        : Base(attributes)
    {
    }

    // IPluginV3OneBuild
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs, nvinfer1::DataType const* inputTypes,
        int32_t nbInputs) const noexcept override
    {
        if (nbInputs != kInputCount || nbOutputs != kMergeOutputCount)
        {
            this->reportError("expects %d input%s and 4 outputs, got %d and %d", kInputCount,
                kInputCount == 1 ? "" : "s", nbInputs, nbOutputs);
            return -1;
        }
        if (!derived().inputTypesSupported(inputTypes))
        {
            return -1;
        }
        setMergeOutputTypes(inputTypes[0], sizeType(), outputTypes);
        return 0;
    }

    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
        nvinfer1::DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/, nvinfer1::DimsExprs* outputs,
        int32_t nbOutputs, nvinfer1::IExprBuilder& exprBuilder) noexcept override
    {
        if (!ranksAre(inputs, nbInputs, Derived::kInputRanks) || nbOutputs != kMergeOutputCount)
        {
            this->reportError("expects %s", Derived::kShapes);
            return -1;
        }
        try // IExprBuilder is not declared noexcept
        {
            std::optional<SizeTensorBounds> const bounds = derived().sizeTensorBounds(inputs, exprBuilder);
            if (!bounds)
            {
                return -1;
            }
            nvinfer1::IDimensionExpr const* newTokens
                = exprBuilder.declareSizeTensor(kNumTokens, *bounds->opt, *bounds->upper);
            if (newTokens == nullptr)
            {
                this->reportError("TensorRT refused the size tensor declaration");
                return -1;
            }
            setMergeOutputShapes(outputs, inputs[0].d[0], newTokens, inputs[0].d[2], bounds->patches);
            return 0;
        }
        catch (...)
        {
            this->reportError("getOutputShapes failed");
            return -1;
        }
    }

    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept override
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
        if constexpr (kInputCount > 1)
        {
            if (pos < kInputCount)
            {
                return derived().supportsInput(pos, desc);
            }
        }
        return supportsMergeOutput(pos - kInputCount, desc, inOut[0].desc.type, sizeType());
    }

    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept override
    {
        // The kernels' workspace only grows with the problem: sized for the profile's maximum shapes.
        typename Derived::Params params{};
        if (nbInputs != kInputCount || !derived().workspaceParams(inputs, params))
        {
            return 0;
        }
        size_t const kernels = Derived::kernelWorkspaceSize(params);
        return kernels == 0 ? 0 : kCountScratchBytes + kernels;
    }

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override
    {
        if (!this->ranksMatch(in, nbInputs, out, nbOutputs))
        {
            return -1;
        }
        // A data-dependent token count may change between inferences without a new onShapeChange call, which is
        // why enqueue() derives the kernel parameters from its own tensor descriptions; where every extent is
        // known here, they are checked here too.
        if constexpr (Derived::kShapesKnownOnShapeChange)
        {
            typename Derived::Params params{};
            if (!derived().kernelParams(in, params))
            {
                return -1;
            }
        }
        return 0;
    }

    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* /*outputDesc*/,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override
    {
        // The outputs are sized for the size tensor's upper bound; the kernel writes them densely with T'
        // (per-image merging: the longest image's count, the others padded with size-0 tokens) as row stride and
        // stores T' in the size tensor, from which TensorRT learns the actual output shapes.
        typename Derived::Params params{};
        if (!derived().kernelParams(inputDesc, params))
        {
            return -1;
        }
        if (workspace == nullptr)
        {
            this->reportError("enqueue got no workspace (getWorkspaceSize could not size it for these shapes)");
            return -1;
        }
        return this->launchResult(
            launchMerge(sizeType(), outputs[kNumTokens], workspace, stream, [&](int64_t* count, void* kernelWorkspace) {
                return Derived::launch(inputDesc, inputs, outputs, count, params, kernelWorkspace, stream);
            }));
    }

protected:
    using Base::kInputCount;

    // The fields both merges have after their own, in this order: the optional per_image and size_dtype.
    static std::vector<nvinfer1::PluginField> withMergeFieldNames(std::vector<nvinfer1::PluginField> fields)
    {
        fields.push_back(fieldName(contract::attr::per_image, nvinfer1::PluginFieldType::kINT32));
        fields.push_back(fieldName(contract::kSizeDtype, nvinfer1::PluginFieldType::kINT32));
        return fields;
    }

    // `fields` followed by per_image and size_dtype of `attributes` (which must outlive the use of the fields).
    static std::vector<nvinfer1::PluginField> withMergeFields(
        std::vector<nvinfer1::PluginField> fields, Attrs const& attributes)
    {
        fields.push_back(valueField(contract::attr::per_image, attributes.perImage));
        fields.push_back(valueField(contract::kSizeDtype, attributes.sizeDtype));
        return fields;
    }

    // Reads the optional per_image and size_dtype into `read`, whose own fields the merge has read, then checks
    // the values by the validation shared with the ONNX Runtime ops. False with the first problem in `error`.
    template <typename Read>
    static bool readMergeFields(FieldReader& reader, Read& read, std::string& error)
    {
        reader.readOptionalInteger(contract::attr::per_image, read.perImage);
        reader.readOptionalInteger(contract::kSizeDtype, read.sizeDtype);
        error = reader.ok() ? algm::attributes::validate(read) : reader.error();
        return error.empty();
    }

    // The type of the size tensor output num_tokens (field size_dtype).
    nvinfer1::DataType sizeType() const noexcept
    {
        return sizeTensorType(this->mAttributes.sizeDtype);
    }

private:
    Derived const& derived() const noexcept
    {
        return static_cast<Derived const&>(*this);
    }
};

} // namespace algm::trt
