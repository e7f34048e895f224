// LocalMerge's plugin methods: types, formats, shapes through the toy IExprBuilder, workspace, runtime shape
// checks and the refusal of a missing workspace.
#include "check.h"
#include "suites.h"

#include <vector>

namespace algm::test
{
using namespace nvinfer1;

void checkLocalMerge(IPluginCreatorV3One& creator)
{
    Fields fields = localMergeFields();
    PluginPtr const plugin = createChecked(creator, "algm/LocalMerge_0", fields.collection());
    if (plugin == nullptr)
    {
        return;
    }
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

} // namespace algm::test
