// The scaffolding every part of the host test uses: plugin fields with storage, the logger the library reports
// to, tensor descriptions, the capability interfaces and the checks every plugin goes through.
#pragma once

#include "capture_logger.h"
#include "toy_expr_builder.h"

#include <NvInferRuntime.h>

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace algm::test
{

// The logger finder handed to the library's setLoggerFinder(); errorMentions() reads what it captured.
CaptureLoggerFinder& loggerFinder();

// Whether one of the errors logged since the last look mentions `expected` (all of them are taken); prints
// what was logged instead when none does.
bool errorMentions(std::string const& expected);

// Plugin fields with storage that outlives the collection.
class Fields
{
public:
    Fields& int32(char const* name, int32_t value, int32_t length = 1);
    Fields& float32(char const* name, float value);
    Fields& int64(char const* name, int64_t value);

    nvinfer1::PluginFieldCollection const* collection();

private:
    std::deque<std::array<int32_t, 2>> mInts;
    std::deque<float> mFloats;
    std::deque<int64_t> mInt64s;
    std::vector<nvinfer1::PluginField> mList;
    nvinfer1::PluginFieldCollection mCollection{};
};

// Valid fields of each merge: LocalMerge on a 32x32 grid with 2x2 windows, GlobalMerge of block 3.
Fields localMergeFields();
Fields globalMergeFields();

// The three creators the library lists (nullptr where one is missing).
struct Creators
{
    nvinfer1::IPluginCreatorV3One* localMerge{};
    nvinfer1::IPluginCreatorV3One* globalMerge{};
    nvinfer1::IPluginCreatorV3One* unmerge{};
};

struct PluginDeleter
{
    void operator()(nvinfer1::IPluginV3* plugin) const
    {
        delete plugin;
    }
};
using PluginPtr = std::unique_ptr<nvinfer1::IPluginV3, PluginDeleter>;

// The capability interfaces, checked the way TensorRT identifies them (by InterfaceInfo); nullptr when missing.
nvinfer1::IPluginV3OneCore* core(nvinfer1::IPluginV3& plugin);
nvinfer1::IPluginV3OneBuild* build(nvinfer1::IPluginV3& plugin);
nvinfer1::IPluginV3OneRuntime* runtime(nvinfer1::IPluginV3& plugin);

// Tensor descriptions and shape expressions.
nvinfer1::Dims dims(std::vector<int64_t> const& extents);
nvinfer1::DynamicPluginTensorDesc dynamicDesc(nvinfer1::DataType type, std::vector<int64_t> const& extents = {},
    nvinfer1::TensorFormat format = nvinfer1::TensorFormat::kLINEAR);
nvinfer1::PluginTensorDesc tensorDesc(nvinfer1::DataType type, std::vector<int64_t> const& extents);
nvinfer1::DimsExprs exprs(std::vector<nvinfer1::IDimensionExpr const*> const& extents);

// Whether `expr` is a toy expression of value `value`.
bool hasValue(nvinfer1::IDimensionExpr const* expr, int64_t value);

// The int32 value of field `name` in `fields`, or INT32_MIN.
int32_t int32Field(nvinfer1::PluginFieldCollection const* fields, char const* name);

// createPlugin must refuse `fields` with nullptr and log an error mentioning `expected`.
void checkRejected(
    nvinfer1::IPluginCreatorV3One& creator, nvinfer1::PluginFieldCollection const* fields, std::string const& expected);

// Plugin methods shared by every plugin: identity, clone, attachToContext and the serialization round trip.
void checkIdentityAndRoundTrip(nvinfer1::IPluginCreatorV3One& creator, nvinfer1::IPluginV3& plugin);

// The plugin createPlugin makes of `fields` in the build phase, checked to exist and then by
// checkIdentityAndRoundTrip; nullptr when there is none.
PluginPtr createChecked(
    nvinfer1::IPluginCreatorV3One& creator, char const* name, nvinfer1::PluginFieldCollection const* fields);

// The output types for these input types, or an empty vector when getOutputDataTypes fails.
std::vector<nvinfer1::DataType> outputTypes(
    nvinfer1::IPluginV3OneBuild& build, std::vector<nvinfer1::DataType> const& inputs);

// supportsFormatCombination for position `pos` with inOut[0..pos] as given.
bool supports(
    nvinfer1::IPluginV3OneBuild& build, int32_t nbInputs, std::vector<nvinfer1::DynamicPluginTensorDesc> inOut);

} // namespace algm::test
