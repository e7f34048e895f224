// Host test of libalgm_plugins.so: what TensorRT does with the library before any kernel runs.
// Loads the library as IPluginRegistry::loadLibrary does (dlopen, setLoggerFinder, getCreators), then checks
// the creators, createPlugin's validation, the build-time methods (types, formats, shapes through a toy
// IExprBuilder, workspace) and the serialization round trip. Makes no CUDA call.
//
// Usage: algm_plugin_host_test path/to/libalgm_plugins.so
#include "capture_logger.h"
#include "check.h"
#include "toy_expr_builder.h"

#include <NvInferRuntime.h>

#include <dlfcn.h>

#include <array>
#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace
{
using namespace nvinfer1;
using algm::test::CaptureLoggerFinder;
using algm::test::ToyExpr;
using algm::test::ToyExprBuilder;

using GetCreators = IPluginCreatorInterface* const* (*) (int32_t&);
using SetLoggerFinder = void (*)(ILoggerFinder*);

CaptureLoggerFinder gLoggerFinder;

// ---------------------------------------------------------------------------------------------------------
// Helpers

// Plugin fields with storage that outlives the collection.
class Fields
{
public:
    Fields& int32(char const* name, int32_t value, int32_t length = 1)
    {
        mInts.push_back({value, value});
        mList.emplace_back(name, mInts.back().data(), PluginFieldType::kINT32, length);
        return *this;
    }

    Fields& float32(char const* name, float value)
    {
        mFloats.push_back(value);
        mList.emplace_back(name, &mFloats.back(), PluginFieldType::kFLOAT32, 1);
        return *this;
    }

    Fields& int64(char const* name, int64_t value)
    {
        mInt64s.push_back(value);
        mList.emplace_back(name, &mInt64s.back(), PluginFieldType::kINT64, 1);
        return *this;
    }

    PluginFieldCollection const* collection()
    {
        mCollection = {static_cast<int32_t>(mList.size()), mList.data()};
        return &mCollection;
    }

private:
    std::deque<std::array<int32_t, 2>> mInts;
    std::deque<float> mFloats;
    std::deque<int64_t> mInt64s;
    std::vector<PluginField> mList;
    PluginFieldCollection mCollection{};
};

Fields localMergeFields()
{
    Fields fields;
    fields.int32("grid_h", 32).int32("grid_w", 32).int32("window_h", 2).int32("window_w", 2);
    fields.float32("threshold", 0.88F);
    return fields;
}

Fields globalMergeFields()
{
    Fields fields;
    fields.int32("layer_number", 3);
    return fields;
}

bool errorMentions(std::string const& expected)
{
    std::vector<std::string> const errors = gLoggerFinder.takeErrors();
    for (std::string const& error : errors)
    {
        if (error.find(expected) != std::string::npos)
        {
            return true;
        }
    }
    std::fprintf(stderr, "  expected an error mentioning '%s'; got %zu error(s)%s%s\n", expected.c_str(),
        errors.size(), errors.empty() ? "" : ", first: ", errors.empty() ? "" : errors.front().c_str());
    return false;
}

struct PluginDeleter
{
    void operator()(IPluginV3* plugin) const
    {
        delete plugin;
    }
};
using PluginPtr = std::unique_ptr<IPluginV3, PluginDeleter>;

// The capability interfaces, checked the way TensorRT identifies them (by InterfaceInfo).
template <typename Capability>
Capability* capability(IPluginV3& plugin, PluginCapabilityType type, char const* kind)
{
    IPluginCapability* found = plugin.getCapabilityInterface(type);
    if (!CHECK(found != nullptr))
    {
        return nullptr;
    }
    InterfaceInfo const info = found->getInterfaceInfo();
    CHECK(std::strcmp(info.kind, kind) == 0);
    CHECK(info.major == 1);
    return static_cast<Capability*>(found);
}

IPluginV3OneCore* core(IPluginV3& plugin)
{
    return capability<IPluginV3OneCore>(plugin, PluginCapabilityType::kCORE, "PLUGIN_V3ONE_CORE");
}

IPluginV3OneBuild* build(IPluginV3& plugin)
{
    return capability<IPluginV3OneBuild>(plugin, PluginCapabilityType::kBUILD, "PLUGIN_V3ONE_BUILD");
}

IPluginV3OneRuntime* runtime(IPluginV3& plugin)
{
    return capability<IPluginV3OneRuntime>(plugin, PluginCapabilityType::kRUNTIME, "PLUGIN_V3ONE_RUNTIME");
}

Dims dims(std::vector<int64_t> const& extents)
{
    Dims result{};
    result.nbDims = static_cast<int32_t>(extents.size());
    for (size_t i = 0; i < extents.size(); ++i)
    {
        result.d[i] = extents[i];
    }
    return result;
}

DynamicPluginTensorDesc dynamicDesc(DataType type, std::vector<int64_t> const& extents = {},
    TensorFormat format = TensorFormat::kLINEAR)
{
    DynamicPluginTensorDesc desc{};
    desc.desc.type = type;
    desc.desc.format = format;
    desc.desc.dims = dims(extents);
    desc.min = desc.opt = desc.max = desc.desc.dims;
    return desc;
}

PluginTensorDesc tensorDesc(DataType type, std::vector<int64_t> const& extents)
{
    PluginTensorDesc desc{};
    desc.type = type;
    desc.format = TensorFormat::kLINEAR;
    desc.dims = dims(extents);
    return desc;
}

DimsExprs exprs(std::vector<IDimensionExpr const*> const& extents)
{
    DimsExprs result{};
    result.nbDims = static_cast<int32_t>(extents.size());
    for (size_t i = 0; i < extents.size(); ++i)
    {
        result.d[i] = extents[i];
    }
    return result;
}

ToyExpr const* toy(IDimensionExpr const* expr)
{
    return dynamic_cast<ToyExpr const*>(expr);
}

bool hasValue(IDimensionExpr const* expr, int64_t value)
{
    ToyExpr const* t = toy(expr);
    return t != nullptr && t->value() == value;
}

// Whether two field collections hold the same names, types and values.
bool sameFields(PluginFieldCollection const* a, PluginFieldCollection const* b)
{
    if (a == nullptr || b == nullptr || a->nbFields != b->nbFields)
    {
        return false;
    }
    for (int32_t i = 0; i < a->nbFields; ++i)
    {
        PluginField const& x = a->fields[i];
        PluginField const& y = b->fields[i];
        size_t const bytes = x.type == PluginFieldType::kFLOAT32 || x.type == PluginFieldType::kINT32 ? 4 : 0;
        if (std::strcmp(x.name, y.name) != 0 || x.type != y.type || x.length != y.length || bytes == 0
            || std::memcmp(x.data, y.data, bytes * static_cast<size_t>(x.length)) != 0)
        {
            return false;
        }
    }
    return true;
}

// The int32 value of field `name` in `fields`, or INT32_MIN.
int32_t int32Field(PluginFieldCollection const* fields, char const* name)
{
    for (int32_t i = 0; fields != nullptr && i < fields->nbFields; ++i)
    {
        if (std::strcmp(fields->fields[i].name, name) == 0 && fields->fields[i].type == PluginFieldType::kINT32)
        {
            int32_t value{};
            std::memcpy(&value, fields->fields[i].data, sizeof(value));
            return value;
        }
    }
    return std::numeric_limits<int32_t>::min();
}

// ---------------------------------------------------------------------------------------------------------
// Creators

struct Creators
{
    IPluginCreatorV3One* localMerge{};
    IPluginCreatorV3One* globalMerge{};
    IPluginCreatorV3One* unmerge{};
};

Creators checkCreators(GetCreators getCreators)
{
    Creators creators;
    int32_t count = -1;
    IPluginCreatorInterface* const* list = getCreators(count);
    if (!CHECK(list != nullptr) || !CHECK(count == 3))
    {
        return creators;
    }
    for (int32_t i = 0; i < count; ++i)
    {
        // TensorRT tells creator generations apart by InterfaceInfo before casting.
        InterfaceInfo const info = list[i]->getInterfaceInfo();
        if (!CHECK(std::strcmp(info.kind, "PLUGIN CREATOR_V3ONE") == 0) || !CHECK(info.major == 1))
        {
            continue;
        }
        auto* creator = static_cast<IPluginCreatorV3One*>(list[i]);
        CHECK(std::strcmp(creator->getPluginVersion(), "1") == 0);
        CHECK(std::strcmp(creator->getPluginNamespace(), "algm") == 0);
        std::string const name = creator->getPluginName();
        if (name == "LocalMerge")
        {
            creators.localMerge = creator;
        }
        else if (name == "GlobalMerge")
        {
            creators.globalMerge = creator;
        }
        else if (name == "Unmerge")
        {
            creators.unmerge = creator;
        }
        else
        {
            CHECK(!"unexpected plugin name");
        }
    }
    CHECK(creators.localMerge != nullptr);
    CHECK(creators.globalMerge != nullptr);
    CHECK(creators.unmerge != nullptr);
    return creators;
}

void checkFieldNames(IPluginCreatorV3One& creator, std::vector<std::pair<std::string, PluginFieldType>> const& expected)
{
    PluginFieldCollection const* names = creator.getFieldNames();
    if (!CHECK(names != nullptr) || !CHECK(names->nbFields == static_cast<int32_t>(expected.size())))
    {
        return;
    }
    for (int32_t i = 0; i < names->nbFields; ++i)
    {
        CHECK(names->fields[i].name == expected[i].first);
        CHECK(names->fields[i].type == expected[i].second);
        CHECK(names->fields[i].length == 1);
    }
}

// createPlugin must refuse `fields` with nullptr and log an error mentioning `expected`.
void checkRejected(IPluginCreatorV3One& creator, PluginFieldCollection const* fields, std::string const& expected)
{
    PluginPtr plugin(creator.createPlugin("bad_node", fields, TensorRTPhase::kBUILD));
    CHECK(plugin == nullptr);
    CHECK(errorMentions(expected));
}

void checkFieldValidation(Creators const& creators)
{
    IPluginCreatorV3One& local = *creators.localMerge;
    checkRejected(local, nullptr, "missing field 'grid_h'");
    {
        Fields fields;
        fields.int32("grid_h", 32).int32("grid_w", 32).int32("window_h", 2).int32("window_w", 2);
        checkRejected(local, fields.collection(), "missing field 'threshold'");
    }
    {
        Fields fields;
        fields.float32("grid_h", 32.F).int32("grid_w", 32).int32("window_h", 2).int32("window_w", 2).float32(
            "threshold", 0.5F);
        checkRejected(local, fields.collection(), "field 'grid_h' has type kFLOAT32, expected kINT32");
    }
    {
        Fields fields;
        fields.int32("grid_h", 0).int32("grid_w", 32).int32("window_h", 2).int32("window_w", 2).float32(
            "threshold", 0.5F);
        checkRejected(local, fields.collection(), "'grid_h' = 0 is out of range [1, 2147483647]");
    }
    {
        Fields fields;
        fields.int32("grid_h", 32).int32("grid_w", 32).int32("window_h", 3).int32("window_w", 2).float32(
            "threshold", 0.5F);
        checkRejected(local, fields.collection(), "do not tile");
    }
    {
        Fields fields;
        fields.int32("grid_h", 65536).int32("grid_w", 65536).int32("window_h", 2).int32("window_w", 2).float32(
            "threshold", 0.5F);
        checkRejected(local, fields.collection(), "too many patches");
    }
    {
        Fields fields;
        fields.int32("grid_h", 32).int32("grid_w", 32).int32("window_h", 1).int32("window_w", 1).float32(
            "threshold", 0.5F);
        checkRejected(local, fields.collection(), "at least 2 patches");
    }
    {
        Fields fields;
        fields.int32("grid_h", 32).int32("grid_w", 32).int32("window_h", 2).int32("window_w", 2).float32(
            "threshold", std::nanf(""));
        checkRejected(local, fields.collection(), "'threshold' is not a finite number");
    }
    {
        Fields fields;
        fields.int32("grid_h", 32).int32("grid_w", 32).int32("window_h", 2).int32("window_w", 2).float32(
            "threshold", std::numeric_limits<float>::infinity());
        checkRejected(local, fields.collection(), "'threshold' is not a finite number");
    }
    {
        Fields fields = localMergeFields();
        fields.int32("grid_h", 16);
        checkRejected(local, fields.collection(), "field 'grid_h' is given more than once");
    }
    {
        Fields fields;
        fields.int32("grid_h", 32, 2).int32("grid_w", 32).int32("window_h", 2).int32("window_w", 2).float32(
            "threshold", 0.5F);
        checkRejected(local, fields.collection(), "field 'grid_h' must hold exactly one value");
    }

    IPluginCreatorV3One& global = *creators.globalMerge;
    checkRejected(global, nullptr, "missing field 'layer_number'");
    {
        Fields fields;
        fields.int32("layer_number", 0);
        checkRejected(global, fields.collection(), "'layer_number' = 0 is out of range");
    }
    {
        Fields fields;
        fields.int64("layer_number", int64_t{1} << 40);
        checkRejected(global, fields.collection(), "'layer_number' = 1099511627776 is out of range");
    }
    {
        Fields fields;
        fields.int64("layer_number", 3); // kINT64 integer fields are accepted when in range, as by other V3 creators
        PluginPtr plugin(global.createPlugin("node", fields.collection(), TensorRTPhase::kBUILD));
        CHECK(plugin != nullptr && int32Field(runtime(*plugin)->getFieldsToSerialize(), "layer_number") == 3);
    }
    {
        Fields fields = globalMergeFields();
        fields.float32("size_dtype", 7.F);
        checkRejected(global, fields.collection(), "field 'size_dtype' has type kFLOAT32, expected kINT32 or kINT64");
    }
    {
        Fields fields = globalMergeFields();
        fields.int32("size_dtype", 1); // ONNX FLOAT: not an integer size tensor type
        checkRejected(global, fields.collection(), "'size_dtype' = 1 is out of range [6, 7]");
    }

    // Unknown fields are ignored (TensorRT only passes listed ones), and Unmerge needs none.
    Fields extra = globalMergeFields();
    extra.int32("some_other_field", 1);
    PluginPtr plugin(global.createPlugin("node", extra.collection(), TensorRTPhase::kBUILD));
    CHECK(plugin != nullptr);
    PluginPtr unmerge(creators.unmerge->createPlugin("node", nullptr, TensorRTPhase::kBUILD));
    CHECK(unmerge != nullptr);
    CHECK(gLoggerFinder.takeErrors().empty());
}

// ---------------------------------------------------------------------------------------------------------
// Plugin methods shared by every plugin: identity, clone, attachToContext and the serialization round trip.

void checkIdentityAndRoundTrip(IPluginCreatorV3One& creator, IPluginV3& plugin)
{
    InterfaceInfo const info = plugin.getInterfaceInfo();
    CHECK(std::strcmp(info.kind, "PLUGIN") == 0);
    if (IPluginV3OneCore* c = core(plugin))
    {
        CHECK(std::strcmp(c->getPluginName(), creator.getPluginName()) == 0);
        CHECK(std::strcmp(c->getPluginVersion(), "1") == 0);
        CHECK(std::strcmp(c->getPluginNamespace(), "algm") == 0);
    }
    IPluginV3OneRuntime* run = runtime(plugin);
    if (run == nullptr)
    {
        return;
    }
    PluginFieldCollection const* fields = run->getFieldsToSerialize();
    CHECK(fields != nullptr);

    // Engine deserialization: createPlugin in the runtime phase with the serialized fields.
    PluginPtr restored(creator.createPlugin("restored", fields, TensorRTPhase::kRUNTIME));
    if (CHECK(restored != nullptr))
    {
        IPluginV3OneRuntime* restoredRuntime = runtime(*restored);
        CHECK(restoredRuntime != nullptr && sameFields(fields, restoredRuntime->getFieldsToSerialize()));
    }
    PluginPtr cloned(plugin.clone());
    if (CHECK(cloned != nullptr))
    {
        IPluginV3OneRuntime* clonedRuntime = runtime(*cloned);
        CHECK(clonedRuntime != nullptr && sameFields(fields, clonedRuntime->getFieldsToSerialize()));
    }
    PluginPtr attached(run->attachToContext(nullptr)); // our plugins do not use the resource context
    if (CHECK(attached != nullptr))
    {
        IPluginV3OneRuntime* attachedRuntime = runtime(*attached);
        CHECK(attachedRuntime != nullptr && sameFields(fields, attachedRuntime->getFieldsToSerialize()));
    }
}

// The output types for these input types, or an empty vector when getOutputDataTypes fails.
std::vector<DataType> outputTypes(IPluginV3OneBuild& build, std::vector<DataType> const& inputs)
{
    std::vector<DataType> outputs(static_cast<size_t>(build.getNbOutputs()), DataType::kBOOL);
    int32_t const status = build.getOutputDataTypes(outputs.data(), static_cast<int32_t>(outputs.size()),
        inputs.data(), static_cast<int32_t>(inputs.size()));
    return status == 0 ? outputs : std::vector<DataType>{};
}

// supportsFormatCombination for position `pos` with inOut[0..pos] as given.
bool supports(IPluginV3OneBuild& build, int32_t nbInputs, std::vector<DynamicPluginTensorDesc> inOut)
{
    int32_t const pos = static_cast<int32_t>(inOut.size()) - 1;
    int32_t const nbOutputs = build.getNbOutputs();
    inOut.resize(static_cast<size_t>(nbInputs + nbOutputs), dynamicDesc(DataType::kBOOL));
    return build.supportsFormatCombination(pos, inOut.data(), nbInputs, nbOutputs);
}

// ---------------------------------------------------------------------------------------------------------
// LocalMerge

void checkLocalMerge(IPluginCreatorV3One& creator)
{
    Fields fields = localMergeFields();
    PluginPtr plugin(creator.createPlugin("algm/LocalMerge_0", fields.collection(), TensorRTPhase::kBUILD));
    if (!CHECK(plugin != nullptr))
    {
        return;
    }
    checkIdentityAndRoundTrip(creator, *plugin);
    CHECK(int32Field(runtime(*plugin)->getFieldsToSerialize(), "grid_w") == 32);
    IPluginV3OneBuild* b = build(*plugin);
    if (b == nullptr)
    {
        return;
    }
    CHECK(b->getNbOutputs() == 4);

    // Types: outputs follow the tokens; sizes FP32, map INT32, size tensor INT32 (the default).
    auto const fp16 = outputTypes(*b, {DataType::kHALF});
    CHECK((fp16 == std::vector<DataType>{DataType::kHALF, DataType::kFLOAT, DataType::kINT32, DataType::kINT32}));
    auto const fp32 = outputTypes(*b, {DataType::kFLOAT});
    CHECK((fp32 == std::vector<DataType>{DataType::kFLOAT, DataType::kFLOAT, DataType::kINT32, DataType::kINT32}));
    CHECK(outputTypes(*b, {DataType::kINT32}).empty());
    CHECK(errorMentions("tokens must be FP32 or FP16"));

    // Formats, position by position.
    auto const h = dynamicDesc(DataType::kHALF);
    auto const f = dynamicDesc(DataType::kFLOAT);
    CHECK(supports(*b, 1, {f}));
    CHECK(supports(*b, 1, {h}));
    CHECK(!supports(*b, 1, {dynamicDesc(DataType::kINT32)}));
    CHECK(!supports(*b, 1, {dynamicDesc(DataType::kHALF, {}, TensorFormat::kCHW32)}));
    CHECK(supports(*b, 1, {h, h}));
    CHECK(!supports(*b, 1, {h, f}));
    CHECK(supports(*b, 1, {h, h, f}));
    CHECK(!supports(*b, 1, {h, h, h}));
    CHECK(supports(*b, 1, {h, h, f, dynamicDesc(DataType::kINT32)}));
    CHECK(supports(*b, 1, {h, h, f, dynamicDesc(DataType::kINT32), dynamicDesc(DataType::kINT32)}));
    CHECK(!supports(*b, 1, {h, h, f, dynamicDesc(DataType::kINT32), dynamicDesc(DataType::kINT64)}));

    // Shapes: tokens [B, 1025, 384] with a dynamic batch.
    {
        ToyExprBuilder builder;
        DimsExprs const tokens = exprs({builder.symbolDim(2), builder.constantDim(1025), builder.constantDim(384)});
        DimsExprs outputs[4]{};
        CHECK(b->getOutputShapes(&tokens, 1, nullptr, 0, outputs, 4, builder) == 0);
        CHECK(builder.errors().empty());
        if (CHECK(builder.declarations().size() == 1))
        {
            auto const& declaration = builder.declarations().front();
            CHECK(declaration.outputIndex == 3);
            CHECK(declaration.upper == tokens.d[1]);
            // 256 windows of 4 patches, half of them merged: 1 + 1024 - 3 * 128.
            CHECK(declaration.opt->constant() && declaration.opt->value() == 641);
            IDimensionExpr const* newTokens = declaration.sizeTensor;
            CHECK(outputs[0].nbDims == 3 && outputs[0].d[0] == tokens.d[0] && outputs[0].d[1] == newTokens
                && outputs[0].d[2] == tokens.d[2]);
            CHECK(outputs[1].nbDims == 2 && outputs[1].d[0] == tokens.d[0] && outputs[1].d[1] == newTokens);
            CHECK(outputs[2].nbDims == 2 && outputs[2].d[0] == tokens.d[0] && hasValue(outputs[2].d[1], 1024)
                && outputs[2].d[1]->isConstant());
            CHECK(outputs[3].nbDims == 0);
            CHECK(newTokens->isSizeTensor());
        }
    }
    {
        ToyExprBuilder builder;
        DimsExprs const tokens = exprs({builder.symbolDim(2), builder.constantDim(1000), builder.constantDim(384)});
        DimsExprs outputs[4]{};
        CHECK(b->getOutputShapes(&tokens, 1, nullptr, 0, outputs, 4, builder) != 0);
        CHECK(errorMentions("expected 1 + grid_h*grid_w = 1025"));
    }

    // Build-time configuration and workspace for a profile up to batch 4.
    std::vector<DynamicPluginTensorDesc> in{dynamicDesc(DataType::kHALF, {-1, 1025, 384})};
    in[0].min = dims({1, 1025, 384});
    in[0].opt = dims({1, 1025, 384});
    in[0].max = dims({4, 1025, 384});
    std::vector<DynamicPluginTensorDesc> out{dynamicDesc(DataType::kHALF, {-1, -1, 384}),
        dynamicDesc(DataType::kFLOAT, {-1, -1}), dynamicDesc(DataType::kINT32, {-1, 1024}),
        dynamicDesc(DataType::kINT32, {})};
    CHECK(b->configurePlugin(in.data(), 1, out.data(), 4) == 0);
    CHECK(b->configurePlugin(in.data(), 1, out.data(), 3) != 0);
    CHECK(errorMentions("expects tokens [B, 1+N, C]"));
    CHECK(b->getWorkspaceSize(in.data(), 1, out.data(), 4) > 0);

    // Runtime shape checks.
    IPluginV3OneRuntime* r = runtime(*plugin);
    std::vector<PluginTensorDesc> outDescs{tensorDesc(DataType::kHALF, {2, 1025, 384}),
        tensorDesc(DataType::kFLOAT, {2, 1025}), tensorDesc(DataType::kINT32, {2, 1024}),
        tensorDesc(DataType::kINT32, {})};
    PluginTensorDesc good = tensorDesc(DataType::kHALF, {2, 1025, 384});
    CHECK(r->onShapeChange(&good, 1, outDescs.data(), 4) == 0);
    PluginTensorDesc bad = tensorDesc(DataType::kHALF, {2, 1024, 384});
    CHECK(r->onShapeChange(&bad, 1, outDescs.data(), 4) != 0);
    CHECK(errorMentions("tokens [2, 1024, 384] do not match the 32x32 grid"));

    // No workspace (getWorkspaceSize returned 0 on an error path): refused before any pointer arithmetic on it
    // and before any kernel runs (null buffers: the kernels would reject them with another message).
    void* noBuffers[4]{};
    void const* noInput = nullptr;
    CHECK(r->enqueue(&good, outDescs.data(), &noInput, noBuffers, nullptr, nullptr) != 0);
    CHECK(errorMentions("enqueue got no workspace"));
}

// ---------------------------------------------------------------------------------------------------------
// GlobalMerge

void checkGlobalMerge(IPluginCreatorV3One& creator)
{
    Fields fields = globalMergeFields();
    PluginPtr plugin(creator.createPlugin("algm/GlobalMerge_1", fields.collection(), TensorRTPhase::kBUILD));
    if (!CHECK(plugin != nullptr))
    {
        return;
    }
    checkIdentityAndRoundTrip(creator, *plugin);
    CHECK(int32Field(runtime(*plugin)->getFieldsToSerialize(), "layer_number") == 3);
    IPluginV3OneBuild* b = build(*plugin);
    if (b == nullptr)
    {
        return;
    }
    CHECK(b->getNbOutputs() == 4);

    auto const fp16 = outputTypes(*b, {DataType::kHALF, DataType::kFLOAT, DataType::kINT32});
    CHECK((fp16 == std::vector<DataType>{DataType::kHALF, DataType::kFLOAT, DataType::kINT32, DataType::kINT32}));
    CHECK(outputTypes(*b, {DataType::kHALF, DataType::kHALF, DataType::kINT32}).empty());
    CHECK(errorMentions("FP32 sizes"));

    auto const h = dynamicDesc(DataType::kHALF);
    auto const f = dynamicDesc(DataType::kFLOAT);
    auto const i32 = dynamicDesc(DataType::kINT32);
    auto const i64 = dynamicDesc(DataType::kINT64);
    CHECK(supports(*b, 3, {f}));
    CHECK(supports(*b, 3, {h}));
    CHECK(supports(*b, 3, {h, f}));
    CHECK(!supports(*b, 3, {h, h}));
    CHECK(supports(*b, 3, {h, f, i32}));
    CHECK(!supports(*b, 3, {h, f, i64}));
    CHECK(supports(*b, 3, {h, f, i32, h}));
    CHECK(!supports(*b, 3, {h, f, i32, f}));
    CHECK(supports(*b, 3, {f, f, i32, f, f, i32, i32}));
    CHECK(!supports(*b, 3, {f, f, i32, f, f, i32, i64}));
    CHECK(!supports(*b, 1, {f}));

    // Shapes: the token count comes from an earlier merge's size tensor; N = 1024 is static.
    {
        ToyExprBuilder builder;
        IDimensionExpr const* batch = builder.symbolDim(2);
        IDimensionExpr const* tokenCount = builder.dataDependentDim();
        DimsExprs const inputs[3]{exprs({batch, tokenCount, builder.constantDim(384)}), exprs({batch, tokenCount}),
            exprs({batch, builder.constantDim(1024)})};
        DimsExprs outputs[4]{};
        CHECK(b->getOutputShapes(inputs, 3, nullptr, 0, outputs, 4, builder) == 0);
        CHECK(builder.errors().empty()); // in particular: the optimum does not depend on a size tensor
        if (CHECK(builder.declarations().size() == 1))
        {
            auto const& declaration = builder.declarations().front();
            CHECK(declaration.outputIndex == 3);
            CHECK(declaration.upper->value() == 1025 && !declaration.upper->dependsOnSizeTensor());
            CHECK(declaration.opt->value() == 513 && !declaration.opt->dependsOnSizeTensor());
            IDimensionExpr const* newTokens = declaration.sizeTensor;
            CHECK(outputs[0].nbDims == 3 && outputs[0].d[0] == batch && outputs[0].d[1] == newTokens
                && outputs[0].d[2] == inputs[0].d[2]);
            CHECK(outputs[1].nbDims == 2 && outputs[1].d[0] == batch && outputs[1].d[1] == newTokens);
            CHECK(outputs[2].nbDims == 2 && outputs[2].d[0] == batch && outputs[2].d[1] == inputs[2].d[1]);
            CHECK(outputs[3].nbDims == 0);
        }
    }

    std::vector<DynamicPluginTensorDesc> in{dynamicDesc(DataType::kHALF, {-1, -1, 384}),
        dynamicDesc(DataType::kFLOAT, {-1, -1}), dynamicDesc(DataType::kINT32, {-1, 1024})};
    in[0].max = dims({4, 641, 384});
    in[1].max = dims({4, 641});
    in[2].max = dims({4, 1024});
    std::vector<DynamicPluginTensorDesc> out{dynamicDesc(DataType::kHALF, {-1, -1, 384}),
        dynamicDesc(DataType::kFLOAT, {-1, -1}), dynamicDesc(DataType::kINT32, {-1, 1024}),
        dynamicDesc(DataType::kINT32, {})};
    CHECK(b->configurePlugin(in.data(), 3, out.data(), 4) == 0);
    CHECK(b->getWorkspaceSize(in.data(), 3, out.data(), 4) > 0);
    in[2] = dynamicDesc(DataType::kINT32, {-1, 1024, 1});
    CHECK(b->configurePlugin(in.data(), 3, out.data(), 4) != 0);
    CHECK(errorMentions("token map [B, N]"));

    IPluginV3OneRuntime* r = runtime(*plugin);
    std::vector<PluginTensorDesc> ins{tensorDesc(DataType::kHALF, {2, 641, 384}),
        tensorDesc(DataType::kFLOAT, {2, 641}), tensorDesc(DataType::kINT32, {2, 1024})};
    std::vector<PluginTensorDesc> outs{tensorDesc(DataType::kHALF, {2, 641, 384}),
        tensorDesc(DataType::kFLOAT, {2, 641}), tensorDesc(DataType::kINT32, {2, 1024}),
        tensorDesc(DataType::kINT32, {})};
    CHECK(r->onShapeChange(ins.data(), 3, outs.data(), 4) == 0);
    CHECK(r->onShapeChange(ins.data(), 2, outs.data(), 4) != 0);
    CHECK(errorMentions("expects tokens [B, T, C]"));

    // No workspace: refused (see checkLocalMerge).
    void const* noInputs[3]{};
    void* noBuffers[4]{};
    CHECK(r->enqueue(ins.data(), outs.data(), noInputs, noBuffers, nullptr, nullptr) != 0);
    CHECK(errorMentions("enqueue got no workspace"));
}

// ---------------------------------------------------------------------------------------------------------
// Unmerge

void checkUnmerge(IPluginCreatorV3One& creator)
{
    PluginPtr plugin(creator.createPlugin("algm/Unmerge_2", nullptr, TensorRTPhase::kBUILD));
    if (!CHECK(plugin != nullptr))
    {
        return;
    }
    checkIdentityAndRoundTrip(creator, *plugin);
    CHECK(runtime(*plugin)->getFieldsToSerialize()->nbFields == 0);
    IPluginV3OneBuild* b = build(*plugin);
    if (b == nullptr)
    {
        return;
    }
    CHECK(b->getNbOutputs() == 1);
    CHECK((outputTypes(*b, {DataType::kHALF, DataType::kINT32}) == std::vector<DataType>{DataType::kHALF}));
    CHECK((outputTypes(*b, {DataType::kFLOAT, DataType::kINT32}) == std::vector<DataType>{DataType::kFLOAT}));
    CHECK(outputTypes(*b, {DataType::kFLOAT, DataType::kINT64}).empty());
    CHECK(errorMentions("INT32 token map"));

    auto const h = dynamicDesc(DataType::kHALF);
    auto const f = dynamicDesc(DataType::kFLOAT);
    auto const i32 = dynamicDesc(DataType::kINT32);
    CHECK(supports(*b, 2, {h}));
    CHECK(supports(*b, 2, {f, i32}));
    CHECK(!supports(*b, 2, {f, f}));
    CHECK(supports(*b, 2, {f, i32, f}));
    CHECK(!supports(*b, 2, {f, i32, h}));

    ToyExprBuilder builder;
    IDimensionExpr const* batch = builder.symbolDim(2);
    DimsExprs const inputs[2]{exprs({batch, builder.dataDependentDim(), builder.constantDim(150)}),
        exprs({batch, builder.constantDim(1024)})};
    DimsExprs output{};
    CHECK(b->getOutputShapes(inputs, 2, nullptr, 0, &output, 1, builder) == 0);
    CHECK(builder.declarations().empty());
    CHECK(output.nbDims == 3 && output.d[0] == batch && output.d[1] == inputs[1].d[1] && output.d[2] == inputs[0].d[2]);

    std::vector<DynamicPluginTensorDesc> in{dynamicDesc(DataType::kHALF, {-1, -1, 150}),
        dynamicDesc(DataType::kINT32, {-1, 1024})};
    std::vector<DynamicPluginTensorDesc> out{dynamicDesc(DataType::kHALF, {-1, 1024, 150})};
    CHECK(b->configurePlugin(in.data(), 2, out.data(), 1) == 0);
    CHECK(b->getWorkspaceSize(in.data(), 2, out.data(), 1) == 0);
}

// The size tensor type: INT32 by default (NvInferRuntime.h), INT64 with size_dtype = 7, for both merges, through
// types, formats and the serialization round trip.
void checkSizeTensorTypes(Creators const& creators)
{
    for (int32_t const dtype : {6, 7})
    {
        DataType const expected = dtype == 7 ? DataType::kINT64 : DataType::kINT32;
        DataType const other = dtype == 7 ? DataType::kINT32 : DataType::kINT64;
        Fields local = localMergeFields();
        local.int32("size_dtype", dtype);
        Fields global = globalMergeFields();
        global.int64("size_dtype", dtype);
        PluginPtr merges[2]{PluginPtr(creators.localMerge->createPlugin("l", local.collection(), TensorRTPhase::kBUILD)),
            PluginPtr(creators.globalMerge->createPlugin("g", global.collection(), TensorRTPhase::kBUILD))};
        std::vector<DataType> const inputs[2]{{DataType::kFLOAT}, {DataType::kFLOAT, DataType::kFLOAT, DataType::kINT32}};
        for (int i = 0; i < 2; ++i)
        {
            if (!CHECK(merges[i] != nullptr))
            {
                continue;
            }
            IPluginV3OneBuild* b = build(*merges[i]);
            CHECK(outputTypes(*b, inputs[i]).at(3) == expected);
            std::vector<DynamicPluginTensorDesc> descs;
            for (DataType type : inputs[i])
            {
                descs.push_back(dynamicDesc(type));
            }
            descs.push_back(dynamicDesc(DataType::kFLOAT));
            descs.push_back(dynamicDesc(DataType::kFLOAT));
            descs.push_back(dynamicDesc(DataType::kINT32));
            descs.push_back(dynamicDesc(expected));
            CHECK(supports(*b, static_cast<int32_t>(inputs[i].size()), descs));
            descs.back() = dynamicDesc(other);
            CHECK(!supports(*b, static_cast<int32_t>(inputs[i].size()), descs));
            // Serialized and restored (runtime phase) with the same type.
            PluginPtr restored((i == 0 ? creators.localMerge : creators.globalMerge)
                                   ->createPlugin("r", runtime(*merges[i])->getFieldsToSerialize(), TensorRTPhase::kRUNTIME));
            CHECK(restored != nullptr && int32Field(runtime(*restored)->getFieldsToSerialize(), "size_dtype") == dtype);
        }
    }
}

// The batch rule field per_image of both merges: 0 when absent (graphs exported before it existed), 1 or 0 as
// given, kept through the serialization round trip; other values are refused.
void checkBatchRule(Creators const& creators)
{
    for (int32_t const perImage : {-1, 0, 1})
    {
        Fields local = localMergeFields();
        Fields global = globalMergeFields();
        if (perImage >= 0)
        {
            local.int32("per_image", perImage);
            global.int64("per_image", perImage);
        }
        IPluginCreatorV3One* const merges[2]{creators.localMerge, creators.globalMerge};
        PluginFieldCollection const* const fields[2]{local.collection(), global.collection()};
        for (int i = 0; i < 2; ++i)
        {
            PluginPtr plugin(merges[i]->createPlugin("p", fields[i], TensorRTPhase::kBUILD));
            if (!CHECK(plugin != nullptr))
            {
                continue;
            }
            int32_t const expected = perImage < 0 ? 0 : perImage;
            CHECK(int32Field(runtime(*plugin)->getFieldsToSerialize(), "per_image") == expected);
            PluginPtr restored(
                merges[i]->createPlugin("r", runtime(*plugin)->getFieldsToSerialize(), TensorRTPhase::kRUNTIME));
            CHECK(restored != nullptr
                && int32Field(runtime(*restored)->getFieldsToSerialize(), "per_image") == expected);
        }
    }
    Fields local = localMergeFields();
    local.int32("per_image", 2);
    checkRejected(*creators.localMerge, local.collection(), "'per_image' = 2 is out of range [0, 1]");
    Fields global = globalMergeFields();
    global.float32("per_image", 1.F);
    checkRejected(
        *creators.globalMerge, global.collection(), "field 'per_image' has type kFLOAT32, expected kINT32 or kINT64");
}

// --print-fields: each creator's field names and types, one "Op field TYPE" line each (for the Python test that
// compares them with the ONNX node contract).
void printFields(Creators const& creators)
{
    for (IPluginCreatorV3One* creator : {creators.localMerge, creators.globalMerge, creators.unmerge})
    {
        PluginFieldCollection const* names = creator->getFieldNames();
        for (int32_t i = 0; names != nullptr && i < names->nbFields; ++i)
        {
            std::printf("%s %s %s\n", creator->getPluginName(), names->fields[i].name,
                names->fields[i].type == PluginFieldType::kINT32 ? "INT32"
                    : names->fields[i].type == PluginFieldType::kFLOAT32 ? "FLOAT32" : "OTHER");
        }
        std::printf("%s namespace=%s version=%s\n", creator->getPluginName(), creator->getPluginNamespace(),
            creator->getPluginVersion());
    }
}

} // namespace

int main(int argc, char** argv)
{
    bool const printOnly = argc == 3 && std::strcmp(argv[2], "--print-fields") == 0;
    if (argc != 2 && !printOnly)
    {
        std::fprintf(stderr, "usage: %s path/to/libalgm_plugins.so [--print-fields]\n", argv[0]);
        return 2;
    }
    void* library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr)
    {
        std::fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
        return 1;
    }
    // The two entry points loadLibrary looks up.
    auto const getCreators = reinterpret_cast<GetCreators>(dlsym(library, "getCreators"));
    auto const setLoggerFinder = reinterpret_cast<SetLoggerFinder>(dlsym(library, "setLoggerFinder"));
    if (!CHECK(getCreators != nullptr) || !CHECK(setLoggerFinder != nullptr))
    {
        return 1;
    }
    setLoggerFinder(&gLoggerFinder);

    Creators const creators = checkCreators(getCreators);
    if (printOnly && creators.localMerge != nullptr && creators.globalMerge != nullptr && creators.unmerge != nullptr)
    {
        printFields(creators);
        return algm::test::gFailures == 0 ? 0 : 1;
    }
    if (creators.localMerge != nullptr && creators.globalMerge != nullptr && creators.unmerge != nullptr)
    {
        checkFieldNames(*creators.localMerge,
            {{"grid_h", PluginFieldType::kINT32}, {"grid_w", PluginFieldType::kINT32},
                {"window_h", PluginFieldType::kINT32}, {"window_w", PluginFieldType::kINT32},
                {"threshold", PluginFieldType::kFLOAT32}, {"per_image", PluginFieldType::kINT32},
                {"size_dtype", PluginFieldType::kINT32}});
        checkFieldNames(*creators.globalMerge,
            {{"layer_number", PluginFieldType::kINT32}, {"per_image", PluginFieldType::kINT32},
                {"size_dtype", PluginFieldType::kINT32}});
        checkSizeTensorTypes(creators);
        checkBatchRule(creators);
        checkFieldNames(*creators.unmerge, {});
        checkFieldValidation(creators);
        checkLocalMerge(*creators.localMerge);
        checkGlobalMerge(*creators.globalMerge);
        checkUnmerge(*creators.unmerge);
    }
    CHECK(gLoggerFinder.takeErrors().empty()); // every error was expected by some check
    setLoggerFinder(nullptr);

    if (algm::test::gFailures > 0)
    {
        std::fprintf(stderr, "%d check(s) failed\n", algm::test::gFailures);
        return 1;
    }
    std::printf("algm plugin host test: all checks passed\n");
    return 0;
}
