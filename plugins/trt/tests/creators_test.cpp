// The creators as TensorRT's registry and ONNX parser see them: getCreators()' list and getFieldNames().
#include "check.h"
#include "suites.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace algm::test
{
using namespace nvinfer1;

namespace
{

void checkFieldNamesOf(
    IPluginCreatorV3One& creator, std::vector<std::pair<std::string, PluginFieldType>> const& expected)
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

} // namespace

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

void checkFieldNames(Creators const& creators)
{
    checkFieldNamesOf(*creators.localMerge,
        {{"grid_h", PluginFieldType::kINT32}, {"grid_w", PluginFieldType::kINT32},
            {"window_h", PluginFieldType::kINT32}, {"window_w", PluginFieldType::kINT32},
            {"threshold", PluginFieldType::kFLOAT32}, {"per_image", PluginFieldType::kINT32},
            {"size_dtype", PluginFieldType::kINT32}});
    checkFieldNamesOf(*creators.globalMerge,
        {{"layer_number", PluginFieldType::kINT32}, {"per_image", PluginFieldType::kINT32},
            {"size_dtype", PluginFieldType::kINT32}});
    checkFieldNamesOf(*creators.unmerge, {});
}

void printFields(Creators const& creators)
{
    for (IPluginCreatorV3One* creator : {creators.localMerge, creators.globalMerge, creators.unmerge})
    {
        PluginFieldCollection const* names = creator->getFieldNames();
        for (int32_t i = 0; names != nullptr && i < names->nbFields; ++i)
        {
            std::printf("%s %s %s\n", creator->getPluginName(), names->fields[i].name,
                names->fields[i].type == PluginFieldType::kINT32         ? "INT32"
                    : names->fields[i].type == PluginFieldType::kFLOAT32 ? "FLOAT32"
                                                                         : "OTHER");
        }
        std::printf("%s namespace=%s version=%s\n", creator->getPluginName(), creator->getPluginNamespace(),
            creator->getPluginVersion());
    }
}

} // namespace algm::test
