#include "creators.h"

#include "global_merge_plugin.h"
#include "local_merge_plugin.h"
#include "unmerge_plugin.h"

namespace algm::trt
{

std::array<nvinfer1::IPluginCreatorInterface*, kCreatorCount> const& allCreators()
{
    // Function-local statics: constructed on the first call (thread-safe), so the order in which the
    // library's files are initialised does not matter to the self-registering flavour.
    static std::array<nvinfer1::IPluginCreatorInterface*, kCreatorCount> const creators{
        &localMergeCreator(), &globalMergeCreator(), &unmergeCreator()};
    return creators;
}

} // namespace algm::trt
