// createPlugin's validation of the node attributes: one table of refused field collections, the accepted
// variants, and the two optional fields of both merges (size_dtype, per_image) through the round trip.
#include "check.h"
#include "suites.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

namespace algm::test
{
using namespace nvinfer1;

namespace
{

// One field of a collection: name, type, value (converted to the type) and how many values it holds.
struct FieldSpec
{
    char const* name;
    PluginFieldType type;
    double value;
    int32_t length;
};

FieldSpec i32(char const* name, double value, int32_t length = 1)
{
    return {name, PluginFieldType::kINT32, value, length};
}

FieldSpec i64(char const* name, double value)
{
    return {name, PluginFieldType::kINT64, value, 1};
}

FieldSpec f32(char const* name, double value)
{
    return {name, PluginFieldType::kFLOAT32, value, 1};
}

enum class Op
{
    kLocalMerge,
    kGlobalMerge,
};

// A field collection createPlugin must refuse, and what its error must mention. No fields: createPlugin gets
// nullptr.
struct Rejection
{
    Op op;
    std::vector<FieldSpec> fields;
    char const* expected;
};

std::vector<Rejection> const& rejections()
{
    double const nan = std::nan("");
    double const infinity = std::numeric_limits<double>::infinity();
    static std::vector<Rejection> const table{
        {Op::kLocalMerge, {}, "missing field 'grid_h'"},
        {Op::kLocalMerge, {i32("grid_h", 32), i32("grid_w", 32), i32("window_h", 2), i32("window_w", 2)},
            "missing field 'threshold'"},
        {Op::kLocalMerge,
            {f32("grid_h", 32), i32("grid_w", 32), i32("window_h", 2), i32("window_w", 2), f32("threshold", 0.5)},
            "field 'grid_h' has type kFLOAT32, expected kINT32"},
        {Op::kLocalMerge,
            {i32("grid_h", 0), i32("grid_w", 32), i32("window_h", 2), i32("window_w", 2), f32("threshold", 0.5)},
            "'grid_h' = 0 is out of range [1, 2147483647]"},
        {Op::kLocalMerge,
            {i32("grid_h", 32), i32("grid_w", 32), i32("window_h", 3), i32("window_w", 2), f32("threshold", 0.5)},
            "do not tile"},
        {Op::kLocalMerge,
            {i32("grid_h", 65536), i32("grid_w", 65536), i32("window_h", 2), i32("window_w", 2), f32("threshold", 0.5)},
            "too many patches"},
        {Op::kLocalMerge,
            {i32("grid_h", 32), i32("grid_w", 32), i32("window_h", 1), i32("window_w", 1), f32("threshold", 0.5)},
            "at least 2 patches"},
        {Op::kLocalMerge,
            {i32("grid_h", 32), i32("grid_w", 32), i32("window_h", 2), i32("window_w", 2), f32("threshold", nan)},
            "'threshold' is not a finite number"},
        {Op::kLocalMerge,
            {i32("grid_h", 32), i32("grid_w", 32), i32("window_h", 2), i32("window_w", 2), f32("threshold", infinity)},
            "'threshold' is not a finite number"},
        {Op::kLocalMerge,
            {i32("grid_h", 32), i32("grid_w", 32), i32("window_h", 2), i32("window_w", 2), f32("threshold", 0.88),
                i32("grid_h", 16)},
            "field 'grid_h' is given more than once"},
        {Op::kLocalMerge,
            {i32("grid_h", 32, 2), i32("grid_w", 32), i32("window_h", 2), i32("window_w", 2), f32("threshold", 0.5)},
            "field 'grid_h' must hold exactly one value"},
        {Op::kLocalMerge,
            {i32("grid_h", 32), i32("grid_w", 32), i32("window_h", 2), i32("window_w", 2), f32("threshold", 0.88),
                i32("per_image", 2)},
            "'per_image' = 2 is out of range [0, 1]"},
        {Op::kGlobalMerge, {}, "missing field 'layer_number'"},
        {Op::kGlobalMerge, {i32("layer_number", 0)}, "'layer_number' = 0 is out of range"},
        {Op::kGlobalMerge, {i64("layer_number", static_cast<double>(int64_t{1} << 40))},
            "'layer_number' = 1099511627776 is out of range"},
        {Op::kGlobalMerge, {i32("layer_number", 3), f32("size_dtype", 7)},
            "field 'size_dtype' has type kFLOAT32, expected kINT32 or kINT64"},
        // ONNX FLOAT (1): not an integer size tensor type.
        {Op::kGlobalMerge, {i32("layer_number", 3), i32("size_dtype", 1)}, "'size_dtype' = 1 is out of range [6, 7]"},
        {Op::kGlobalMerge, {i32("layer_number", 3), f32("per_image", 1)},
            "field 'per_image' has type kFLOAT32, expected kINT32 or kINT64"},
    };
    return table;
}

Fields fieldsOf(std::vector<FieldSpec> const& specs)
{
    Fields fields;
    for (FieldSpec const& spec : specs)
    {
        switch (spec.type)
        {
        case PluginFieldType::kINT32: fields.int32(spec.name, static_cast<int32_t>(spec.value), spec.length); break;
        case PluginFieldType::kINT64: fields.int64(spec.name, static_cast<int64_t>(spec.value)); break;
        default: fields.float32(spec.name, static_cast<float>(spec.value)); break;
        }
    }
    return fields;
}

} // namespace

void checkFieldValidation(Creators const& creators)
{
    std::vector<Rejection> const& table = rejections();
    for (size_t i = 0; i < table.size(); ++i)
    {
        Rejection const& row = table[i];
        IPluginCreatorV3One& creator = row.op == Op::kLocalMerge ? *creators.localMerge : *creators.globalMerge;
        Fields fields = fieldsOf(row.fields);
        int const failuresBefore = gFailures;
        checkRejected(creator, row.fields.empty() ? nullptr : fields.collection(), row.expected);
        if (gFailures > failuresBefore)
        {
            std::fprintf(stderr, "  in rejection case %zu (%s)\n", i, creator.getPluginName());
        }
    }

    IPluginCreatorV3One& global = *creators.globalMerge;
    {
        Fields fields;
        fields.int64("layer_number", 3); // kINT64 integer fields are accepted when in range, as by other V3 creators
        PluginPtr plugin(global.createPlugin("node", fields.collection(), TensorRTPhase::kBUILD));
        CHECK(plugin != nullptr && int32Field(runtime(*plugin)->getFieldsToSerialize(), "layer_number") == 3);
    }

    // Unknown fields are ignored (TensorRT only passes listed ones), and Unmerge needs none.
    Fields extra = globalMergeFields();
    extra.int32("some_other_field", 1);
    PluginPtr plugin(global.createPlugin("node", extra.collection(), TensorRTPhase::kBUILD));
    CHECK(plugin != nullptr);
    PluginPtr unmerge(creators.unmerge->createPlugin("node", nullptr, TensorRTPhase::kBUILD));
    CHECK(unmerge != nullptr);
    CHECK(loggerFinder().takeErrors().empty());
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
        PluginPtr merges[2]{
            PluginPtr(creators.localMerge->createPlugin("l", local.collection(), TensorRTPhase::kBUILD)),
            PluginPtr(creators.globalMerge->createPlugin("g", global.collection(), TensorRTPhase::kBUILD))};
        std::vector<DataType> const inputs[2]{
            {DataType::kFLOAT}, {DataType::kFLOAT, DataType::kFLOAT, DataType::kINT32}};
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
// given, kept through the serialization round trip. Other values are refused (rejections()).
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
            CHECK(
                restored != nullptr && int32Field(runtime(*restored)->getFieldsToSerialize(), "per_image") == expected);
        }
    }
}

} // namespace algm::test
