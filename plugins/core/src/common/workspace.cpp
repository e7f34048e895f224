// Workspace bounds of the launchers (the same for the CPU and the CUDA build).
#include "algm/kernels.h"
#include "validate.h"
#include "workspace_layout.h"

namespace algm
{

size_t localMergeWorkspaceSize(LocalMergeParams const& params)
{
    return isValid(params) ? LocalMergeWorkspace(nullptr, params).bytes : 0;
}

size_t globalMergeWorkspaceSize(GlobalMergeParams const& params)
{
    return isValid(params) ? GlobalMergeWorkspace(nullptr, params).bytes : 0;
}

} // namespace algm
