#include "creators.h"

#include "global_merge_plugin.h"
#include "local_merge_plugin.h"
#include "plugin_creator.h"
#include "unmerge_plugin.h"

namespace algm::trt
{

std::array<nvinfer1::IPluginCreatorInterface*, kCreatorCount> const& allCreators()
{
    // Function-local statics: constructed on the first call (thread-safe), so the order in which the
    // library's files are initialised does not matter to the self-registering flavour.
    static PluginCreator<LocalMergePlugin> localMerge;
    static PluginCreator<GlobalMergePlugin> globalMerge;
    static PluginCreator<UnmergePlugin> unmerge;
    static std::array<nvinfer1::IPluginCreatorInterface*, kCreatorCount> const creators{
        &localMerge, &globalMerge, &unmerge};
    return creators;
}

} // namespace algm::trt
