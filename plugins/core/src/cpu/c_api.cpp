// The C ABI of libalgm_cpu.so: thin forwards to algm::cpu (only these symbols are exported).
#include "algm/c_api.h"
#include "algm/kernels.h"

namespace
{

algm::DataType toDataType(int dtype)
{
    return static_cast<algm::DataType>(dtype); // out-of-range values are rejected by the launchers
}

algm::LocalMergeParams localParams(
    int batch, int channels, int gridH, int gridW, int windowH, int windowW, float threshold, int perImage)
{
    return algm::LocalMergeParams{batch, channels, gridH, gridW, windowH, windowW, threshold, perImage};
}

} // namespace

extern "C" {

int algm_c_api_version(void)
{
    return 2;
}

size_t algm_cpu_local_merge_workspace_size(int batch, int channels, int grid_h, int grid_w, int window_h, int window_w)
{
    return algm::localMergeWorkspaceSize(localParams(batch, channels, grid_h, grid_w, window_h, window_w, 0.0f, 0));
}

int algm_cpu_local_merge(int dtype, const void* tokens, void* merged, float* merged_sizes, int32_t* merged_map,
    int64_t* num_tokens, int batch, int channels, int grid_h, int grid_w, int window_h, int window_w, float threshold,
    int per_image, void* workspace)
{
    return algm::cpu::localMerge(toDataType(dtype), tokens, merged, merged_sizes, merged_map, num_tokens,
        localParams(batch, channels, grid_h, grid_w, window_h, window_w, threshold, per_image), workspace);
}

size_t algm_cpu_global_merge_workspace_size(int batch, int tokens, int channels, int patches, int layer_number)
{
    return algm::globalMergeWorkspaceSize(algm::GlobalMergeParams{batch, tokens, channels, patches, layer_number, 0});
}

int algm_cpu_global_merge(int dtype, const void* tokens, const float* sizes, const int32_t* token_map, void* merged,
    float* merged_sizes, int32_t* merged_map, int64_t* num_tokens, int batch, int tokens_per_image, int channels,
    int patches, int layer_number, int per_image, void* workspace)
{
    algm::GlobalMergeParams const params{batch, tokens_per_image, channels, patches, layer_number, per_image};
    return algm::cpu::globalMerge(
        toDataType(dtype), tokens, sizes, token_map, merged, merged_sizes, merged_map, num_tokens, params, workspace);
}

int algm_cpu_unmerge(int dtype, const void* values, const int32_t* token_map, void* patch_values, int batch, int tokens,
    int width, int patches)
{
    algm::UnmergeParams const params{batch, tokens, width, patches};
    return algm::cpu::unmerge(toDataType(dtype), values, token_map, patch_values, params);
}

} // extern "C"
