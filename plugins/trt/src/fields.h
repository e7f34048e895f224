// Plugin fields: the node attributes as TensorRT passes them to createPlugin(), and back from
// getFieldsToSerialize() when an engine is deserialized.
//
// The ONNX parser builds the fields from the node attributes the creator lists in getFieldNames(),
// converting each attribute to the listed type: INT -> kINT32, FLOAT -> kFLOAT32 (one value each).
// It reads `plugin_version` and `plugin_namespace` itself to find the creator, so those are not listed.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <string>
#include <vector>

namespace algm::trt
{

// A getFieldNames() entry: one value of `type`, no data.
nvinfer1::PluginField fieldName(char const* name, nvinfer1::PluginFieldType type) noexcept;

// A getFieldsToSerialize() entry pointing at `value` (which must outlive the use of the field).
nvinfer1::PluginField valueField(char const* name, int32_t const& value) noexcept;
nvinfer1::PluginField valueField(char const* name, float const& value) noexcept;

// Owns a list of fields and the PluginFieldCollection TensorRT reads them through.
class FieldCollection
{
public:
    // Replaces the fields; the returned collection stays valid until the next call or destruction.
    nvinfer1::PluginFieldCollection const* set(std::vector<nvinfer1::PluginField> fields);

    // The collection of the last set() (empty before the first).
    nvinfer1::PluginFieldCollection const* get() const noexcept;

private:
    std::vector<nvinfer1::PluginField> mFields;
    nvinfer1::PluginFieldCollection mCollection{};
};

// Reads required single-value fields by name, keeping the first problem found as an error message.
// Fields with other names are ignored (TensorRT passes only what getFieldNames/getFieldsToSerialize list).
class FieldReader
{
public:
    explicit FieldReader(nvinfer1::PluginFieldCollection const& fields) noexcept;

    // Field `name`: one kINT32 or kINT64 value (the ONNX parser gives kINT32; other V3 callers may pass kINT64),
    // read as it is: its range is checked by algm::attributes::validate, shared with the ONNX Runtime ops.
    void readInteger(char const* name, int64_t& value);

    // As readInteger, but an absent field leaves `value` (its default) unchanged.
    void readOptionalInteger(char const* name, int64_t& value);

    // Field `name`: one kFLOAT32 value (finiteness: algm::attributes::validate).
    void readFloat32(char const* name, float& value);

    // Records a problem found by the caller (for example between two fields), unless one is recorded.
    void fail(std::string message);

    bool ok() const noexcept;
    std::string const& error() const noexcept;

private:
    // Field `name` if it is present once; else records why not (when `required`) and returns nullptr.
    nvinfer1::PluginField const* find(char const* name, nvinfer1::PluginFieldType type, bool required);

    // The data of `field` if it has one value of `type` (or kINT64 where `type` is kINT32); else records why not.
    void const* dataOf(nvinfer1::PluginField const& field, nvinfer1::PluginFieldType type);

    void readInteger(nvinfer1::PluginField const& field, int64_t& value);

    nvinfer1::PluginFieldCollection const& mFields;
    std::string mError;
};

} // namespace algm::trt
