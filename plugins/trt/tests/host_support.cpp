#include "host_support.h"

#include "check.h"

#include <cstdio>
#include <cstring>
#include <limits>

namespace algm::test
{
using namespace nvinfer1;

namespace
{

// The capability interface of `type`, checked the way TensorRT identifies it (by InterfaceInfo).
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

} // namespace

CaptureLoggerFinder& loggerFinder()
{
    static CaptureLoggerFinder finder;
    return finder;
}

bool errorMentions(std::string const& expected)
{
    std::vector<std::string> const errors = loggerFinder().takeErrors();
    for (std::string const& error : errors)
    {
        if (error.find(expected) != std::string::npos)
        {
            return true;
        }
    }
    std::fprintf(stderr, "  expected an error mentioning '%s'; got %zu error(s)%s%s\n", expected.c_str(), errors.size(),
        errors.empty() ? "" : ", first: ", errors.empty() ? "" : errors.front().c_str());
    return false;
}

Fields& Fields::int32(char const* name, int32_t value, int32_t length)
{
    mInts.push_back({value, value});
    mList.emplace_back(name, mInts.back().data(), PluginFieldType::kINT32, length);
    return *this;
}

Fields& Fields::float32(char const* name, float value)
{
    mFloats.push_back(value);
    mList.emplace_back(name, &mFloats.back(), PluginFieldType::kFLOAT32, 1);
    return *this;
}

Fields& Fields::int64(char const* name, int64_t value)
{
    mInt64s.push_back(value);
    mList.emplace_back(name, &mInt64s.back(), PluginFieldType::kINT64, 1);
    return *this;
}

PluginFieldCollection const* Fields::collection()
{
    mCollection = {static_cast<int32_t>(mList.size()), mList.data()};
    return &mCollection;
}

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

DynamicPluginTensorDesc dynamicDesc(DataType type, std::vector<int64_t> const& extents, TensorFormat format)
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

bool hasValue(IDimensionExpr const* expr, int64_t value)
{
    auto const* toy = dynamic_cast<ToyExpr const*>(expr);
    return toy != nullptr && toy->value() == value;
}

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

void checkRejected(IPluginCreatorV3One& creator, PluginFieldCollection const* fields, std::string const& expected)
{
    PluginPtr plugin(creator.createPlugin("bad_node", fields, TensorRTPhase::kBUILD));
    CHECK(plugin == nullptr);
    CHECK(errorMentions(expected));
}

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

PluginPtr createChecked(IPluginCreatorV3One& creator, char const* name, PluginFieldCollection const* fields)
{
    PluginPtr plugin(creator.createPlugin(name, fields, TensorRTPhase::kBUILD));
    if (CHECK(plugin != nullptr))
    {
        checkIdentityAndRoundTrip(creator, *plugin);
    }
    return plugin;
}

std::vector<DataType> outputTypes(IPluginV3OneBuild& build, std::vector<DataType> const& inputs)
{
    std::vector<DataType> outputs(static_cast<size_t>(build.getNbOutputs()), DataType::kBOOL);
    int32_t const status = build.getOutputDataTypes(
        outputs.data(), static_cast<int32_t>(outputs.size()), inputs.data(), static_cast<int32_t>(inputs.size()));
    return status == 0 ? outputs : std::vector<DataType>{};
}

bool supports(IPluginV3OneBuild& build, int32_t nbInputs, std::vector<DynamicPluginTensorDesc> inOut)
{
    int32_t const pos = static_cast<int32_t>(inOut.size()) - 1;
    int32_t const nbOutputs = build.getNbOutputs();
    inOut.resize(static_cast<size_t>(nbInputs + nbOutputs), dynamicDesc(DataType::kBOOL));
    return build.supportsFormatCombination(pos, inOut.data(), nbInputs, nbOutputs);
}

} // namespace algm::test
