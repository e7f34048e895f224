#include "merge_outputs.h"

#include "tensors.h"

namespace algm::trt
{

nvinfer1::DataType sizeTensorType(int32_t onnxDtype) noexcept
{
    return onnxDtype == contract::kOnnxInt64 ? nvinfer1::DataType::kINT64 : nvinfer1::DataType::kINT32;
}

void setMergeOutputTypes(nvinfer1::DataType tokenType, nvinfer1::DataType sizeType, nvinfer1::DataType* types) noexcept
{
    types[kMerged] = tokenType;
    types[kMergedSizes] = nvinfer1::DataType::kFLOAT;
    types[kMergedMap] = nvinfer1::DataType::kINT32;
    types[kNumTokens] = sizeType;
}

bool supportsMergeOutput(int32_t output, nvinfer1::PluginTensorDesc const& desc, nvinfer1::DataType tokenType,
    nvinfer1::DataType sizeType) noexcept
{
    switch (output)
    {
    case kMerged: return isLinearOf(desc, tokenType);
    case kMergedSizes: return isLinearOf(desc, nvinfer1::DataType::kFLOAT);
    case kMergedMap: return isLinearOf(desc, nvinfer1::DataType::kINT32);
    case kNumTokens: return isLinearOf(desc, sizeType);
    default: return false;
    }
}

void setMergeOutputShapes(nvinfer1::DimsExprs* outputs, nvinfer1::IDimensionExpr const* batch,
    nvinfer1::IDimensionExpr const* newTokens, nvinfer1::IDimensionExpr const* channels,
    nvinfer1::IDimensionExpr const* patches) noexcept
{
    outputs[kMerged].nbDims = 3;
    outputs[kMerged].d[0] = batch;
    outputs[kMerged].d[1] = newTokens;
    outputs[kMerged].d[2] = channels;

    outputs[kMergedSizes].nbDims = 2;
    outputs[kMergedSizes].d[0] = batch;
    outputs[kMergedSizes].d[1] = newTokens;

    outputs[kMergedMap].nbDims = 2;
    outputs[kMergedMap].d[0] = batch;
    outputs[kMergedMap].d[1] = patches;

    outputs[kNumTokens].nbDims = 0; // size tensors are declared 0-D
}

} // namespace algm::trt
