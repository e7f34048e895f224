// A small JSON reader: enough for the engine's sidecar file (objects, arrays, strings, numbers, literals).
#pragma once

#include <string>
#include <vector>

namespace sample
{

class JsonValue
{
public:
    enum class Type
    {
        kNull,
        kBool,
        kNumber,
        kString,
        kArray,
        kObject,
    };

    bool isNull() const noexcept;

    // Typed access; each throws std::runtime_error naming `what` when the value has another type.
    double number(char const* what) const;
    std::string const& string(char const* what) const;
    std::vector<JsonValue> const& array(char const* what) const;

    // The member `key` of an object, or nullptr when absent (throws when this is not an object).
    JsonValue const* find(std::string const& key) const;

    // The member `key` of an object; throws when absent.
    JsonValue const& at(std::string const& key) const;

private:
    friend class JsonParser;

    Type mType = Type::kNull;
    double mNumber = 0.0;
    std::string mString;
    std::vector<JsonValue> mItems;  // array items or object member values
    std::vector<std::string> mKeys; // object member keys, parallel to mItems
};

// Parses one JSON document; throws std::runtime_error with the byte offset of the first problem.
JsonValue parseJson(std::string const& text);

} // namespace sample
