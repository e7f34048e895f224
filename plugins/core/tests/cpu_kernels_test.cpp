// Unit tests of the CPU kernels and of the shared arithmetic (algm/math.h). Registered with ctest.
#include "algm/kernels.h"
#include "algm/math.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <vector>

namespace
{

int gFailures = 0;

#define EXPECT(condition)                                                                                              \
    do                                                                                                                 \
    {                                                                                                                  \
        if (!(condition))                                                                                              \
        {                                                                                                              \
            std::printf("%s:%d: expected %s\n", __FILE__, __LINE__, #condition);                                       \
            ++gFailures;                                                                                               \
        }                                                                                                              \
    } while (0)

struct LocalResult
{
    algm::Status status;
    std::vector<float> merged;
    std::vector<float> sizes;
    std::vector<int32_t> map;
    int64_t numTokens;
};

LocalResult runLocalMerge(std::vector<float> const& tokens, algm::LocalMergeParams const& p)
{
    size_t const tokenCount = 1 + static_cast<size_t>(p.gridH * p.gridW);
    LocalResult result{algm::kSuccess, std::vector<float>(p.batch * tokenCount * p.channels),
        std::vector<float>(p.batch * tokenCount), std::vector<int32_t>(p.batch * (tokenCount - 1)), 0};
    std::vector<unsigned char> workspace(algm::localMergeWorkspaceSize(p) + 1);
    result.status = algm::cpu::localMerge(algm::DataType::kFloat32, tokens.data(), result.merged.data(),
        result.sizes.data(), result.map.data(), &result.numTokens, p, workspace.data() + 1); // unaligned base
    return result;
}

void testHalfConversion()
{
    // Every binary16 value widens and narrows back to itself; NaN stays NaN.
    for (uint32_t bits = 0; bits < 0x10000u; ++bits)
    {
        uint16_t const half = static_cast<uint16_t>(bits);
        float const widened = algm::halfBitsToFloat(half);
        if (std::isnan(widened))
        {
            EXPECT((half & 0x7c00u) == 0x7c00u && (half & 0x3ffu) != 0);
            EXPECT(std::isnan(algm::halfBitsToFloat(algm::floatToHalfBits(widened))));
            continue;
        }
        EXPECT(algm::floatToHalfBits(widened) == half);
#ifdef __FLT16_MAX__ // the compiler's _Float16 as an independent reference
        _Float16 reference;
        std::memcpy(&reference, &half, sizeof(half));
        EXPECT(algm::floatBits(widened) == algm::floatBits(static_cast<float>(reference)));
#endif
    }
#ifdef __FLT16_MAX__
    // Narrowing (round to nearest even, subnormals, overflow) agrees with _Float16 on a sweep of floats.
    for (uint64_t bits = 0; bits <= 0xffffffffull; bits += 4093)
    {
        float const value = algm::floatFromBits(static_cast<uint32_t>(bits));
        if (std::isnan(value))
        {
            continue;
        }
        _Float16 const reference = static_cast<_Float16>(value);
        uint16_t referenceBits;
        std::memcpy(&referenceBits, &reference, sizeof(referenceBits));
        EXPECT(algm::floatToHalfBits(value) == referenceBits);
    }
#endif
    EXPECT(algm::floatToHalfBits(65519.0f) == 0x7bffu);        // largest half
    EXPECT(algm::floatToHalfBits(65520.0f) == 0x7c00u);        // the tie rounds to even: infinity
    EXPECT(algm::floatToHalfBits(std::ldexp(1.0f, -25)) == 0); // tie between 0 and the smallest subnormal
    EXPECT(algm::floatToHalfBits(std::ldexp(1.5f, -25)) == 1);
    EXPECT(algm::floatToHalfBits(1.0f + std::ldexp(1.0f, -11)) == 0x3c00u);     // tie to even (down)
    EXPECT(algm::floatToHalfBits(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02u); // tie to even (up)
    EXPECT(algm::floatToHalfBits(-0.0f) == 0x8000u);
}

void testRanks()
{
    float const values[] = {0.5f, 0.9f, 0.5f, -INFINITY, 0.9f};
    int const expected[] = {2, 0, 3, 4, 1};
    for (int i = 0; i < 5; ++i)
    {
        EXPECT(algm::stableDescendingRank(values, 5, i) == expected[i]);
    }
}

void testLocalMergeTiesGoToLowerWindow()
{
    algm::LocalMergeParams const p{1, 4, 4, 4, 2, 2, 0.9f, 0};
    LocalResult const r = runLocalMerge(std::vector<float>(17 * 4, 1.0f), p);
    EXPECT(r.status == algm::kSuccess);
    EXPECT(r.numTokens == 5);
    int32_t const expected[] = {0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3};
    EXPECT(std::memcmp(r.map.data(), expected, sizeof(expected)) == 0);
    EXPECT(r.sizes[0] == 1.0f && r.sizes[1] == 4.0f && r.sizes[4] == 4.0f);
    EXPECT(r.merged[4 * 4 + 3] == 1.0f);
}

// 4x4 grid, 2x2 windows, C = 2. Image 0: windows 0 and 3 identical tokens (similarity 1), windows 1 and 2
// alternating orthogonal tokens. Image 1: only window 2 identical, the rest all zero tokens (similarity 0,
// no NaN). At threshold 0.5 image 0 has 2 mergeable windows, image 1 has 1.
std::vector<float> twoImageTokens()
{
    std::vector<float> tokens(2 * 17 * 2, 0.0f);
    for (int patch = 0; patch < 16; ++patch)
    {
        int const window = (patch / 8) * 2 + (patch % 4) / 2;
        float* image0 = &tokens[(1 + patch) * 2];
        float* image1 = &tokens[(17 + 1 + patch) * 2];
        bool const uniform = window == 0 || window == 3;
        image0[0] = uniform || patch % 2 == 0 ? 1.0f : 0.0f;
        image0[1] = uniform || patch % 2 == 0 ? 0.0f : 1.0f;
        image1[0] = window == 2 ? 3.0f : 0.0f;
    }
    return tokens;
}

void testLocalMergeBatchMinimumAndZeroTokens()
{
    // Published rule: r = min(2, 1) = 1 for both images.
    LocalResult const r = runLocalMerge(twoImageTokens(), algm::LocalMergeParams{2, 2, 4, 4, 2, 2, 0.5f, 0});
    EXPECT(r.status == algm::kSuccess);
    EXPECT(r.numTokens == 1 + 1 + 16 - 4);
    EXPECT(r.map[0] == 0 && r.map[1] == 0 && r.map[4] == 0 && r.map[5] == 0); // image 0: window 0 first
    EXPECT(r.map[16 + 8] == 0 && r.map[16 + 13] == 0);                        // image 1: window 2
    EXPECT(r.map[16 + 0] == 1);
    for (float v : r.merged)
    {
        EXPECT(std::isfinite(v));
    }
}

void testLocalMergePerImagePadsTheShorterImage()
{
    // Per image: r_0 = 2 (T'_0 = 1 + 2 + 16 - 8 = 11), r_1 = 1 (T'_1 = 14 = T'); image 0's rows 11..13 are
    // padding: zeros of size 0.
    LocalResult const r = runLocalMerge(twoImageTokens(), algm::LocalMergeParams{2, 2, 4, 4, 2, 2, 0.5f, 1});
    EXPECT(r.status == algm::kSuccess);
    EXPECT(r.numTokens == 14);
    EXPECT(r.map[0] == 0 && r.map[10] == 1 && r.map[15] == 1); // windows 0 and 3 merged, in rank order
    EXPECT(*std::max_element(r.map.begin(), r.map.begin() + 16) == 11 - 2);
    EXPECT(*std::max_element(r.map.begin() + 16, r.map.end()) == 14 - 2);
    EXPECT(r.sizes[0] == 1.0f && r.sizes[1] == 4.0f && r.sizes[2] == 4.0f && r.sizes[10] == 1.0f);
    for (int t = 11; t < 14; ++t)
    {
        EXPECT(r.sizes[t] == 0.0f && r.merged[t * 2] == 0.0f && r.merged[t * 2 + 1] == 0.0f);
    }
    EXPECT(r.sizes[14 + 1] == 4.0f && r.sizes[14 + 13] == 1.0f); // image 1 unpadded
}

void testGlobalMergeSmallExample()
{
    // C = 2: cls, B0 = (0,1), A1 = (0,1), B1 = (1,0), A2 = (1,1). A1 matches B0 with score 1, A2 ties B0/B1
    // at 0.707 and takes B0. Layer 1000: threshold ~ mean 0.854, so only A1 merges (into B0).
    float const tokens[] = {1, 0, 0, 1, 0, 1, 1, 0, 1, 1};
    float const sizes[] = {1, 1, 2, 1, 1};
    int32_t const map[] = {0, 1, 1, 2, 3}; // 5 patches on 4 patch tokens
    algm::GlobalMergeParams const p{1, 5, 2, 5, 1000, 0};
    std::vector<unsigned char> workspace(algm::globalMergeWorkspaceSize(p));
    float merged[10];
    float mergedSizes[5];
    int32_t mergedMap[5];
    int64_t numTokens = 0;
    EXPECT(algm::cpu::globalMerge(algm::DataType::kFloat32, tokens, sizes, map, merged, mergedSizes, mergedMap,
               &numTokens, p, workspace.data())
        == algm::kSuccess);
    EXPECT(numTokens == 4);
    // Slots: cls 0, A2 1, B0 (+A1) 2, B1 3.
    float const expectedSizes[] = {1, 1, 3, 1};
    int32_t const expectedMap[] = {1, 1, 1, 2, 0};
    EXPECT(std::memcmp(mergedSizes, expectedSizes, sizeof(expectedSizes)) == 0);
    EXPECT(std::memcmp(mergedMap, expectedMap, sizeof(expectedMap)) == 0);
    EXPECT(merged[2 * 2] == 0.0f && merged[2 * 2 + 1] == 1.0f);
    // Layer 1: threshold ~1.06, nothing merges.
    algm::GlobalMergeParams const p1{1, 5, 2, 5, 1, 0};
    EXPECT(algm::cpu::globalMerge(algm::DataType::kFloat32, tokens, sizes, map, merged, mergedSizes, mergedMap,
               &numTokens, p1, workspace.data())
        == algm::kSuccess);
    EXPECT(numTokens == 5);
}

// The token-map policy shared with CUDA (math.h): out-of-range entries (-1 and T - 1 = 4) compose to -1, the
// other outputs are those of the in-range example above, and the CPU reports kInvalidArgument.
void testGlobalMergeOutOfRangeMap()
{
    float const tokens[] = {1, 0, 0, 1, 0, 1, 1, 0, 1, 1};
    float const sizes[] = {1, 1, 2, 1, 1};
    int32_t const map[] = {0, -1, 1, 4, 3};
    algm::GlobalMergeParams const p{1, 5, 2, 5, 1000, 0};
    std::vector<unsigned char> workspace(algm::globalMergeWorkspaceSize(p));
    float merged[10]{};
    float mergedSizes[5]{};
    int32_t mergedMap[5] = {7, 7, 7, 7, 7};
    int64_t numTokens = 0;
    EXPECT(algm::cpu::globalMerge(algm::DataType::kFloat32, tokens, sizes, map, merged, mergedSizes, mergedMap,
               &numTokens, p, workspace.data())
        == algm::kInvalidArgument);
    EXPECT(numTokens == 4);
    int32_t const expectedMap[] = {1, -1, 1, -1, 0};
    EXPECT(std::memcmp(mergedMap, expectedMap, sizeof(expectedMap)) == 0);
    float const expectedSizes[] = {1, 1, 3, 1};
    EXPECT(std::memcmp(mergedSizes, expectedSizes, sizeof(expectedSizes)) == 0);
}

// Image 0: the small example above; image 1: its first 3 tokens real, the last 2 padding (size 0, arbitrary
// values). Image 1 alone has one candidate score: its std is NaN, so it merges nothing.
void testGlobalMergeIgnoresPaddingTokens()
{
    float const tokens[] = {1, 0, 0, 1, 0, 1, 1, 0, 1, 1, /* image 1 */ 1, 0, 0, 1, 0, 1, 7, 7, -7, 7};
    float const sizes[] = {1, 1, 2, 1, 1, /* image 1 */ 1, 1, 2, 0, 0};
    int32_t const map[] = {0, 1, 1, 2, 3, /* image 1 */ 0, 1, 1, 0, 0};
    float merged[20];
    float mergedSizes[10];
    int32_t mergedMap[10];
    int64_t numTokens = 0;
    algm::GlobalMergeParams const perImage{2, 5, 2, 5, 1000, 1};
    std::vector<unsigned char> workspace(algm::globalMergeWorkspaceSize(perImage));
    EXPECT(algm::cpu::globalMerge(algm::DataType::kFloat32, tokens, sizes, map, merged, mergedSizes, mergedMap,
               &numTokens, perImage, workspace.data())
        == algm::kSuccess);
    EXPECT(numTokens == 4); // T'_0 = 4, T'_1 = 3 (+ 1 padding row)
    // Image 1 slots: cls (+ the padding A token, weight 0) 0, A1 1, B0 2, padding 3.
    float const expectedSizes[] = {1, 1, 3, 1, /* image 1 */ 1, 2, 1, 0};
    int32_t const expectedMap[] = {1, 1, 1, 2, 0, /* image 1 */ 1, 0, 0, 1, 1};
    float const expectedImage1[] = {1, 0, 0, 1, 0, 1, 0, 0};
    EXPECT(std::memcmp(mergedSizes, expectedSizes, sizeof(expectedSizes)) == 0);
    EXPECT(std::memcmp(mergedMap, expectedMap, sizeof(expectedMap)) == 0);
    EXPECT(std::memcmp(merged + 8, expectedImage1, sizeof(expectedImage1)) == 0);
    // Published rule: image 1's NaN std makes the batch threshold NaN: nothing merges, T' = T_0 = 5.
    algm::GlobalMergeParams const published{2, 5, 2, 5, 1000, 0};
    EXPECT(algm::cpu::globalMerge(algm::DataType::kFloat32, tokens, sizes, map, merged, mergedSizes, mergedMap,
               &numTokens, published, workspace.data())
        == algm::kSuccess);
    EXPECT(numTokens == 5);
    EXPECT(mergedSizes[5 + 3] == 0.0f && mergedSizes[5 + 4] == 0.0f); // image 1 keeps its 3 tokens, padded
}

void testUnmerge()
{
    float const values[] = {10, 11, 20, 21, 30, 31};
    int32_t const map[] = {2, 0, 0, 1};
    float out[8];
    EXPECT(algm::cpu::unmerge(algm::DataType::kFloat32, values, map, out, algm::UnmergeParams{1, 3, 2, 4})
        == algm::kSuccess);
    float const expected[] = {30, 31, 10, 11, 10, 11, 20, 21};
    EXPECT(std::memcmp(out, expected, sizeof(expected)) == 0);
    // The token-map policy shared with CUDA (math.h): an out-of-range entry gathers a zero row, the others are
    // gathered as usual, and the CPU reports kInvalidArgument.
    int32_t const badMap[] = {3, 0, -1, 1};
    std::fill(std::begin(out), std::end(out), 5.0f);
    EXPECT(algm::cpu::unmerge(algm::DataType::kFloat32, values, badMap, out, algm::UnmergeParams{1, 3, 2, 4})
        == algm::kInvalidArgument);
    float const expectedFill[] = {0, 0, 10, 11, 0, 0, 20, 21};
    EXPECT(std::memcmp(out, expectedFill, sizeof(expectedFill)) == 0);
}

void testInvalidArguments()
{
    std::vector<float> tokens(1 + 24, 0.0f);
    EXPECT(runLocalMerge(tokens, algm::LocalMergeParams{1, 1, 4, 6, 3, 3, 0.5f, 0}).status == algm::kInvalidArgument);
    EXPECT(runLocalMerge(tokens, algm::LocalMergeParams{1, 1, 4, 6, 1, 1, 0.5f, 0}).status == algm::kInvalidArgument);
    EXPECT(algm::localMergeWorkspaceSize(algm::LocalMergeParams{1, 1, 4, 6, 3, 3, 0.5f, 0}) == 0);
    EXPECT(algm::globalMergeWorkspaceSize(algm::GlobalMergeParams{1, 1, 4, 1, 1, 0}) == 0);
    EXPECT(algm::globalMergeWorkspaceSize(algm::GlobalMergeParams{1, 5, 4, 1, 1, 2}) == 0); // per_image: 0 or 1
    EXPECT(algm::localMergeWorkspaceSize(algm::LocalMergeParams{1, 1, 4, 6, 2, 3, 0.5f, -1}) == 0);
    float out[4];
    int32_t const map[] = {0};
    EXPECT(algm::cpu::unmerge(static_cast<algm::DataType>(7), out, map, out, algm::UnmergeParams{1, 1, 1, 1})
        == algm::kInvalidArgument);
    EXPECT(algm::cpu::unmerge(algm::DataType::kFloat32, nullptr, map, out, algm::UnmergeParams{1, 1, 1, 1})
        == algm::kInvalidArgument);
}

} // namespace

int main()
{
    testHalfConversion();
    testRanks();
    testLocalMergeTiesGoToLowerWindow();
    testLocalMergeBatchMinimumAndZeroTokens();
    testLocalMergePerImagePadsTheShorterImage();
    testGlobalMergeSmallExample();
    testGlobalMergeOutOfRangeMap();
    testGlobalMergeIgnoresPaddingTokens();
    testUnmerge();
    testInvalidArguments();
    std::printf(gFailures == 0 ? "all CPU kernel tests passed\n" : "%d CPU kernel checks failed\n", gFailures);
    return gFailures == 0 ? 0 : 1;
}
