#include "json.h"

#include <cstdint>
#include <cstdlib>
#include <stdexcept>

namespace sample
{

class JsonParser
{
public:
    explicit JsonParser(std::string const& text)
        : mText(text)
    {
    }

    JsonValue document()
    {
        JsonValue value = parseValue(0);
        skipSpace();
        if (mPos != mText.size())
        {
            fail("unexpected text after the document");
        }
        return value;
    }

private:
    static constexpr int kMaxDepth = 64;

    [[noreturn]] void fail(char const* message) const
    {
        throw std::runtime_error("JSON: " + std::string(message) + " at offset " + std::to_string(mPos));
    }

    void skipSpace()
    {
        while (mPos < mText.size()
            && (mText[mPos] == ' ' || mText[mPos] == '\t' || mText[mPos] == '\n' || mText[mPos] == '\r'))
        {
            ++mPos;
        }
    }

    char peek()
    {
        skipSpace();
        if (mPos >= mText.size())
        {
            fail("unexpected end");
        }
        return mText[mPos];
    }

    void expect(char c)
    {
        if (peek() != c)
        {
            fail((std::string("expected '") + c + "'").c_str());
        }
        ++mPos;
    }

    bool consumeWord(char const* word)
    {
        std::string const w(word);
        if (mText.compare(mPos, w.size(), w) == 0)
        {
            mPos += w.size();
            return true;
        }
        return false;
    }

    JsonValue parseValue(int depth)
    {
        if (depth > kMaxDepth)
        {
            fail("nesting too deep");
        }
        JsonValue value;
        char const c = peek();
        if (c == '{')
        {
            value.mType = JsonValue::Type::kObject;
            ++mPos;
            if (peek() == '}')
            {
                ++mPos;
                return value;
            }
            do
            {
                if (peek() != '"')
                {
                    fail("expected a member name");
                }
                value.mKeys.push_back(parseString());
                expect(':');
                value.mItems.push_back(parseValue(depth + 1));
            } while (consumeSeparator('}'));
        }
        else if (c == '[')
        {
            value.mType = JsonValue::Type::kArray;
            ++mPos;
            if (peek() == ']')
            {
                ++mPos;
                return value;
            }
            do
            {
                value.mItems.push_back(parseValue(depth + 1));
            } while (consumeSeparator(']'));
        }
        else if (c == '"')
        {
            value.mType = JsonValue::Type::kString;
            value.mString = parseString();
        }
        else if (consumeWord("true") || consumeWord("false"))
        {
            value.mType = JsonValue::Type::kBool; // accepted; the sidecar keys read here are never booleans
        }
        else if (consumeWord("null"))
        {
            value.mType = JsonValue::Type::kNull;
        }
        else
        {
            value.mType = JsonValue::Type::kNumber;
            value.mNumber = parseNumber();
        }
        return value;
    }

    // After an item: true on ',' (another item follows), false on `close` (consumed).
    bool consumeSeparator(char close)
    {
        char const c = peek();
        ++mPos;
        if (c == ',')
        {
            return true;
        }
        if (c != close)
        {
            fail((std::string("expected ',' or '") + close + "'").c_str());
        }
        return false;
    }

    double parseNumber()
    {
        std::size_t const start = mPos;
        auto digits = [&] {
            std::size_t const from = mPos;
            while (mPos < mText.size() && mText[mPos] >= '0' && mText[mPos] <= '9')
            {
                ++mPos;
            }
            return mPos > from;
        };
        if (mPos < mText.size() && mText[mPos] == '-')
        {
            ++mPos;
        }
        bool ok = digits();
        if (ok && mPos < mText.size() && mText[mPos] == '.')
        {
            ++mPos;
            ok = digits();
        }
        if (ok && mPos < mText.size() && (mText[mPos] == 'e' || mText[mPos] == 'E'))
        {
            ++mPos;
            if (mPos < mText.size() && (mText[mPos] == '+' || mText[mPos] == '-'))
            {
                ++mPos;
            }
            ok = digits();
        }
        if (!ok)
        {
            mPos = start;
            fail("invalid value");
        }
        return std::strtod(mText.substr(start, mPos - start).c_str(), nullptr);
    }

    uint32_t parseHex4()
    {
        if (mPos + 4 > mText.size())
        {
            fail("truncated \\u escape");
        }
        uint32_t code = 0;
        for (int i = 0; i < 4; ++i)
        {
            char const h = mText[mPos++];
            code <<= 4;
            if (h >= '0' && h <= '9')
                code |= static_cast<uint32_t>(h - '0');
            else if (h >= 'a' && h <= 'f')
                code |= static_cast<uint32_t>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F')
                code |= static_cast<uint32_t>(h - 'A' + 10);
            else
                fail("invalid \\u escape");
        }
        return code;
    }

    static void appendUtf8(std::string& out, uint32_t code)
    {
        if (code < 0x80)
        {
            out += static_cast<char>(code);
        }
        else if (code < 0x800)
        {
            out += static_cast<char>(0xC0 | (code >> 6));
            out += static_cast<char>(0x80 | (code & 0x3F));
        }
        else if (code < 0x10000)
        {
            out += static_cast<char>(0xE0 | (code >> 12));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (code & 0x3F));
        }
        else
        {
            out += static_cast<char>(0xF0 | (code >> 18));
            out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (code & 0x3F));
        }
    }

    std::string parseString()
    {
        expect('"');
        std::string out;
        while (true)
        {
            if (mPos >= mText.size())
            {
                fail("unterminated string");
            }
            char const c = mText[mPos++];
            if (c == '"')
            {
                return out;
            }
            if (static_cast<unsigned char>(c) < 0x20)
            {
                fail("control character in string");
            }
            if (c != '\\')
            {
                out += c;
                continue;
            }
            if (mPos >= mText.size())
            {
                fail("unterminated escape");
            }
            char const e = mText[mPos++];
            switch (e)
            {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u':
            {
                uint32_t code = parseHex4();
                // A UTF-16 surrogate pair spells one code point above U+FFFF.
                if (code >= 0xD800 && code <= 0xDBFF && mText.compare(mPos, 2, "\\u") == 0)
                {
                    mPos += 2;
                    uint32_t const low = parseHex4();
                    if (low < 0xDC00 || low > 0xDFFF)
                    {
                        fail("invalid surrogate pair");
                    }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                }
                appendUtf8(out, code);
                break;
            }
            default: fail("invalid escape");
            }
        }
    }

    std::string const& mText;
    std::size_t mPos = 0;
};

bool JsonValue::isNull() const noexcept
{
    return mType == Type::kNull;
}

double JsonValue::number(char const* what) const
{
    if (mType != Type::kNumber)
    {
        throw std::runtime_error(std::string(what) + ": expected a number");
    }
    return mNumber;
}

std::string const& JsonValue::string(char const* what) const
{
    if (mType != Type::kString)
    {
        throw std::runtime_error(std::string(what) + ": expected a string");
    }
    return mString;
}

std::vector<JsonValue> const& JsonValue::array(char const* what) const
{
    if (mType != Type::kArray)
    {
        throw std::runtime_error(std::string(what) + ": expected an array");
    }
    return mItems;
}

JsonValue const* JsonValue::find(std::string const& key) const
{
    if (mType != Type::kObject)
    {
        throw std::runtime_error("'" + key + "': looked up in a value that is not an object");
    }
    for (std::size_t i = 0; i < mKeys.size(); ++i)
    {
        if (mKeys[i] == key)
        {
            return &mItems[i];
        }
    }
    return nullptr;
}

JsonValue const& JsonValue::at(std::string const& key) const
{
    JsonValue const* value = find(key);
    if (value == nullptr)
    {
        throw std::runtime_error("missing key '" + key + "'");
    }
    return *value;
}

JsonValue parseJson(std::string const& text)
{
    return JsonParser(text).document();
}

} // namespace sample
