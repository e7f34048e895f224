// GlobalMerge's plugin methods: types, formats, shapes behind a data-dependent token count, workspace, runtime
// shape checks and the refusal of a missing workspace.
#include "check.h"
#include "suites.h"

#include <vector>

namespace algm::test
{
using namespace nvinfer1;

void checkGlobalMerge(IPluginCreatorV3One& creator)
{
    Fields fields = globalMergeFields();
    PluginPtr const plugin = createChecked(creator, "algm/GlobalMerge_1", fields.collection());
    if (plugin == nullptr)
    {
        return;
    }
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

    // No workspace: refused (see local_merge_test.cpp).
    void const* noInputs[3]{};
    void* noBuffers[4]{};
    CHECK(r->enqueue(ins.data(), outs.data(), noInputs, noBuffers, nullptr, nullptr) != 0);
    CHECK(errorMentions("enqueue got no workspace"));
}

} // namespace algm::test
