// Launch interface of the ALGM kernels: LocalMerge (CLAP), GlobalMerge (GBM), Unmerge.
// Semantics: docs/plugin-ops.md. Implemented twice from the same arithmetic (algm/math.h):
// for CUDA (src/cuda/*.cu, pointers are device pointers, work is queued on `stream`) and for the
// CPU (src/cpu/*.cpp, host pointers, `stream` ignored, synchronous).
#pragma once

#include <cstddef>
#include <cstdint>

#ifdef __CUDACC__
#include <cuda_runtime_api.h>
#else
typedef struct CUstream_st* cudaStream_t;
#endif

namespace algm
{

enum class DataType : int32_t
{
    kFloat32 = 0,
    kFloat16 = 1,
};

// Status codes returned by every launcher.
enum Status : int32_t
{
    kSuccess = 0,
    kInvalidArgument = 1,
    kCudaError = 2,
};

struct LocalMergeParams
{
    int32_t batch;    // B
    int32_t channels; // C
    int32_t gridH;    // tokens = 1 + gridH * gridW
    int32_t gridW;
    int32_t windowH;
    int32_t windowW;
    float threshold;
    int32_t perImage; // 1: per-image r_b (padded outputs); 0: the published batch minimum
};

struct GlobalMergeParams
{
    int32_t batch;       // B
    int32_t tokens;      // T (class token included)
    int32_t channels;    // C
    int32_t patches;     // N (columns of the token map)
    int32_t layerNumber; // divisor of the std term of the threshold
    int32_t perImage;    // 1: per-image threshold and r_b (padded outputs); 0: the published batch rule
};

struct UnmergeParams
{
    int32_t batch;   // B
    int32_t tokens;  // M: rows of `values` per image
    int32_t width;   // K
    int32_t patches; // N
};

// Bytes of scratch memory each launcher needs (never more than the bound for these parameters).
// The same bound serves the CPU and the CUDA launchers; any base address works (they align it).
// 0 for parameters the launchers reject.
size_t localMergeWorkspaceSize(LocalMergeParams const& params);
size_t globalMergeWorkspaceSize(GlobalMergeParams const& params);

// Outputs are written densely with the data-dependent token count T' = max_b T'_b as row stride:
// merged [B, T', C] (dtype of tokens), mergedSizes [B, T'] float, mergedMap [B, N] int32,
// numTokens: one int64 = T'. Buffers must hold the upper bound T' = T. With perImage, image b's rows past
// its own T'_b are padding (zeros, size 0); GlobalMerge ignores input tokens of size 0.
namespace cpu
{
Status localMerge(DataType dtype, void const* tokens, void* merged, float* mergedSizes, int32_t* mergedMap,
    int64_t* numTokens, LocalMergeParams const& params, void* workspace);
Status globalMerge(DataType dtype, void const* tokens, float const* sizes, int32_t const* tokenMap, void* merged,
    float* mergedSizes, int32_t* mergedMap, int64_t* numTokens, GlobalMergeParams const& params, void* workspace);
Status unmerge(
    DataType dtype, void const* values, int32_t const* tokenMap, void* patchValues, UnmergeParams const& params);
} // namespace cpu

// Token maps, one policy for both backends (algm/math.h: mapEntryInRange, composedMapEntry): an out-of-range
// entry yields -1 in mergedMap (globalMerge) or a zero row (unmerge), never an out-of-bounds access, and the
// other outputs are computed as usual, so both backends write the same outputs. The CPU launchers then return
// kInvalidArgument; the CUDA ones cannot report it without a host synchronisation (TensorRT's enqueue forbids it).
namespace cuda
{
Status localMerge(DataType dtype, void const* tokens, void* merged, float* mergedSizes, int32_t* mergedMap,
    int64_t* numTokens, LocalMergeParams const& params, void* workspace, cudaStream_t stream);
Status globalMerge(DataType dtype, void const* tokens, float const* sizes, int32_t const* tokenMap, void* merged,
    float* mergedSizes, int32_t* mergedMap, int64_t* numTokens, GlobalMergeParams const& params, void* workspace,
    cudaStream_t stream);
Status unmerge(DataType dtype, void const* values, int32_t const* tokenMap, void* patchValues,
    UnmergeParams const& params, cudaStream_t stream);
// *out = *count on the device (for INT32 size tensors: the merge launchers write T' as an int64).
Status narrowCount(int64_t const* count, int32_t* out, cudaStream_t stream);
} // namespace cuda

} // namespace algm
