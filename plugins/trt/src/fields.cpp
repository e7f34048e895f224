#include "fields.h"

#include <cstring>
#include <utility>

namespace algm::trt
{
namespace
{
using nvinfer1::PluginFieldType;

char const* typeName(PluginFieldType type) noexcept
{
    switch (type)
    {
    case PluginFieldType::kFLOAT16: return "kFLOAT16";
    case PluginFieldType::kFLOAT32: return "kFLOAT32";
    case PluginFieldType::kFLOAT64: return "kFLOAT64";
    case PluginFieldType::kINT8: return "kINT8";
    case PluginFieldType::kINT16: return "kINT16";
    case PluginFieldType::kINT32: return "kINT32";
    case PluginFieldType::kINT64: return "kINT64";
    case PluginFieldType::kCHAR: return "kCHAR";
    case PluginFieldType::kDIMS: return "kDIMS";
    default: return "another type";
    }
}

std::string quoted(char const* name)
{
    return std::string("field '") + name + "'";
}
} // namespace

nvinfer1::PluginField fieldName(char const* name, PluginFieldType type) noexcept
{
    return nvinfer1::PluginField(name, nullptr, type, 1);
}

nvinfer1::PluginField valueField(char const* name, int32_t const& value) noexcept
{
    return nvinfer1::PluginField(name, &value, PluginFieldType::kINT32, 1);
}

nvinfer1::PluginField valueField(char const* name, float const& value) noexcept
{
    return nvinfer1::PluginField(name, &value, PluginFieldType::kFLOAT32, 1);
}

nvinfer1::PluginFieldCollection const* FieldCollection::set(std::vector<nvinfer1::PluginField> fields)
{
    mFields = std::move(fields);
    mCollection.nbFields = static_cast<int32_t>(mFields.size());
    mCollection.fields = mFields.data();
    return &mCollection;
}

nvinfer1::PluginFieldCollection const* FieldCollection::get() const noexcept
{
    return &mCollection;
}

FieldReader::FieldReader(nvinfer1::PluginFieldCollection const& fields) noexcept
    : mFields(fields)
{
}

void FieldReader::readInteger(char const* name, int64_t& value)
{
    nvinfer1::PluginField const* field = find(name, PluginFieldType::kINT32, true);
    if (field != nullptr)
    {
        readInteger(*field, value);
    }
}

void FieldReader::readOptionalInteger(char const* name, int64_t& value)
{
    nvinfer1::PluginField const* field = find(name, PluginFieldType::kINT32, false);
    if (field != nullptr)
    {
        readInteger(*field, value);
    }
}

void FieldReader::readInteger(nvinfer1::PluginField const& field, int64_t& value)
{
    void const* data = dataOf(field, PluginFieldType::kINT32);
    if (data == nullptr)
    {
        return;
    }
    if (field.type == PluginFieldType::kINT64)
    {
        std::memcpy(&value, data, sizeof(int64_t)); // the field data need not be aligned
        return;
    }
    int32_t narrow{};
    std::memcpy(&narrow, data, sizeof(narrow));
    value = narrow;
}

void FieldReader::readFloat32(char const* name, float& value)
{
    nvinfer1::PluginField const* field = find(name, PluginFieldType::kFLOAT32, true);
    void const* data = field != nullptr ? dataOf(*field, PluginFieldType::kFLOAT32) : nullptr;
    if (data != nullptr)
    {
        std::memcpy(&value, data, sizeof(value));
    }
}

void FieldReader::fail(std::string message)
{
    if (mError.empty())
    {
        mError = std::move(message);
    }
}

bool FieldReader::ok() const noexcept
{
    return mError.empty();
}

std::string const& FieldReader::error() const noexcept
{
    return mError;
}

nvinfer1::PluginField const* FieldReader::find(char const* name, PluginFieldType type, bool required)
{
    if (mFields.nbFields > 0 && mFields.fields == nullptr)
    {
        fail("the field collection has no field array");
        return nullptr;
    }
    nvinfer1::PluginField const* found = nullptr;
    for (int32_t i = 0; i < mFields.nbFields; ++i)
    {
        nvinfer1::PluginField const& field = mFields.fields[i];
        if (field.name == nullptr || std::strcmp(field.name, name) != 0)
        {
            continue;
        }
        if (found != nullptr)
        {
            fail(quoted(name) + " is given more than once");
            return nullptr;
        }
        found = &field;
    }
    if (found == nullptr && required)
    {
        fail("missing " + quoted(name) + " (" + typeName(type) + ")");
    }
    return found;
}

void const* FieldReader::dataOf(nvinfer1::PluginField const& field, PluginFieldType type)
{
    bool const widened = type == PluginFieldType::kINT32 && field.type == PluginFieldType::kINT64;
    if (field.type != type && !widened)
    {
        fail(quoted(field.name) + " has type " + typeName(field.type) + ", expected " + typeName(type)
            + (type == PluginFieldType::kINT32 ? " or kINT64" : ""));
        return nullptr;
    }
    if (field.length != 1 || field.data == nullptr)
    {
        fail(quoted(field.name) + " must hold exactly one value (length " + std::to_string(field.length) + ")");
        return nullptr;
    }
    return field.data;
}

} // namespace algm::trt
