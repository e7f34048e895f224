// Minimal checks for the host test: report every failed condition, count them, keep going.
#pragma once

#include <cstdio>

namespace algm::test
{

inline int gFailures = 0;
inline int gChecks = 0; // checks evaluated, passed or not

inline bool check(bool condition, char const* text, char const* file, int line)
{
    ++gChecks;
    if (!condition)
    {
        ++gFailures;
        std::fprintf(stderr, "%s:%d: check failed: %s\n", file, line, text);
    }
    return condition;
}

} // namespace algm::test

#define CHECK(condition) ::algm::test::check(static_cast<bool>(condition), #condition, __FILE__, __LINE__)
