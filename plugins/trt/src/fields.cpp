#include "fields.h"

#include <cmath>
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

void FieldReader::readInt32(char const* name, int32_t& value, int32_t minimum, int32_t maximum)
{
    void const* data = find(name, PluginFieldType::kINT32);
    if (data == nullptr)
    {
        return;
    }
    int32_t read{};
    std::memcpy(&read, data, sizeof(read)); // the field data need not be aligned
    if (read < minimum || read > maximum)
    {
        fail(quoted(name) + " = " + std::to_string(read) + " is out of range [" + std::to_string(minimum) + ", "
            + std::to_string(maximum) + "]");
        return;
    }
    value = read;
}

void FieldReader::readFloat32(char const* name, float& value)
{
    void const* data = find(name, PluginFieldType::kFLOAT32);
    if (data == nullptr)
    {
        return;
    }
    float read{};
    std::memcpy(&read, data, sizeof(read));
    if (!std::isfinite(read))
    {
        fail(quoted(name) + " is not a finite number");
        return;
    }
    value = read;
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

void const* FieldReader::find(char const* name, PluginFieldType type)
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
    if (found == nullptr)
    {
        fail("missing " + quoted(name) + " (" + typeName(type) + ")");
        return nullptr;
    }
    if (found->type != type)
    {
        fail(quoted(name) + " has type " + typeName(found->type) + ", expected " + typeName(type));
        return nullptr;
    }
    if (found->length != 1 || found->data == nullptr)
    {
        fail(quoted(name) + " must hold exactly one value (length " + std::to_string(found->length) + ")");
        return nullptr;
    }
    return found->data;
}

} // namespace algm::trt
