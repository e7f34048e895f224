/* C ABI of the CPU kernels (libalgm_cpu.so), for ctypes and other foreign callers.
 * Same semantics and buffer contracts as algm::cpu::* in algm/kernels.h (see docs/plugin-ops.md):
 * dtype 0 = float32, 1 = float16 (raw binary16 bits); outputs are written densely with the token count T'
 * as row stride and must hold the upper bound T' = T; workspace: at least *_workspace_size() bytes.
 * per_image: 1 = per-image merging (each image's own r_b and GBM threshold; T' = max_b T'_b, an image's rows
 * past its T'_b are padding: zeros of size 0), 0 = the published batch-minimum rule.
 * Every launcher returns an ALGM_STATUS_* code. */
#ifndef ALGM_C_API_H
#define ALGM_C_API_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define ALGM_C_EXPORT __declspec(dllexport)
#else
#define ALGM_C_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum
{
    ALGM_STATUS_SUCCESS = 0,
    ALGM_STATUS_INVALID_ARGUMENT = 1,
    ALGM_STATUS_CUDA_ERROR = 2
};

/* Version of this C ABI; bumped on any change of the signatures below (2: per_image arguments). */
ALGM_C_EXPORT int algm_c_api_version(void);

/* Bytes of workspace algm_cpu_local_merge needs; 0 when the parameters are invalid. */
ALGM_C_EXPORT size_t algm_cpu_local_merge_workspace_size(
    int batch, int channels, int grid_h, int grid_w, int window_h, int window_w);

/* tokens [batch, 1 + grid_h*grid_w, channels] -> merged [batch, T', channels], merged_sizes [batch, T'],
 * merged_map [batch, grid_h*grid_w], *num_tokens = T'. */
ALGM_C_EXPORT int algm_cpu_local_merge(int dtype, const void* tokens, void* merged, float* merged_sizes,
    int32_t* merged_map, int64_t* num_tokens, int batch, int channels, int grid_h, int grid_w, int window_h,
    int window_w, float threshold, int per_image, void* workspace);

/* Bytes of workspace algm_cpu_global_merge needs; 0 when the parameters are invalid. */
ALGM_C_EXPORT size_t algm_cpu_global_merge_workspace_size(
    int batch, int tokens, int channels, int patches, int layer_number);

/* tokens [batch, tokens, channels], sizes [batch, tokens], token_map [batch, patches] (entries in
 * [0, tokens - 2]; tokens of size 0 are padding and take no part) -> merged [batch, T', channels],
 * merged_sizes [batch, T'], merged_map [batch, patches]. */
ALGM_C_EXPORT int algm_cpu_global_merge(int dtype, const void* tokens, const float* sizes, const int32_t* token_map,
    void* merged, float* merged_sizes, int32_t* merged_map, int64_t* num_tokens, int batch, int tokens_per_image,
    int channels, int patches, int layer_number, int per_image, void* workspace);

/* values [batch, tokens, width], token_map [batch, patches] (entries in [0, tokens - 1])
 * -> patch_values [batch, patches, width]. */
ALGM_C_EXPORT int algm_cpu_unmerge(int dtype, const void* values, const int32_t* token_map, void* patch_values,
    int batch, int tokens, int width, int patches);

#ifdef __cplusplus
}
#endif

#endif /* ALGM_C_API_H */
