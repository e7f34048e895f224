// Unmerge's plugin methods: types, formats, shapes and workspace.
#include "check.h"
#include "suites.h"

#include <vector>

namespace algm::test
{
using namespace nvinfer1;

void checkUnmerge(IPluginCreatorV3One& creator)
{
    PluginPtr const plugin = createChecked(creator, "algm/Unmerge_2", nullptr);
    if (plugin == nullptr)
    {
        return;
    }
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

    std::vector<DynamicPluginTensorDesc> in{
        dynamicDesc(DataType::kHALF, {-1, -1, 150}), dynamicDesc(DataType::kINT32, {-1, 1024})};
    std::vector<DynamicPluginTensorDesc> out{dynamicDesc(DataType::kHALF, {-1, 1024, 150})};
    CHECK(b->configurePlugin(in.data(), 2, out.data(), 1) == 0);
    CHECK(b->getWorkspaceSize(in.data(), 2, out.data(), 1) == 0);
}

} // namespace algm::test
