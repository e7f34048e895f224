// The half of the three algm plugins that only differs by tables: clone, name, output count, the rank checks
// of configurePlugin/onShapeChange and getFieldsToSerialize. `Derived` provides
//   kName, kInputRanks / kOutputRanks (std::array of tensor ranks; MergePlugin gives the merges' outputs),
//   kShapes (the expected shapes, for messages),
//   a constructor from Attributes and static serializedFields(Attributes const&) -> std::vector<PluginField>.
#pragma once

#include "fields.h"
#include "plugin_base.h"
#include "tensors.h"

#include <vector>

namespace algm::trt
{

template <typename Derived, typename Attrs>
class RankedPlugin : public PluginBase
{
public:
    using Attributes = Attrs;

    explicit RankedPlugin(Attributes const& attributes)
        : mAttributes(attributes)
    {
    }

    nvinfer1::IPluginV3* clone() noexcept override
    {
        try
        {
            return new Derived(mAttributes);
        }
        catch (...)
        {
            return nullptr;
        }
    }

    char const* getPluginName() const noexcept override
    {
        return Derived::kName;
    }

    int32_t getNbOutputs() const noexcept override
    {
        return static_cast<int32_t>(Derived::kOutputRanks.size());
    }

    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override
    {
        return ranksMatch(in, nbInputs, out, nbOutputs) ? 0 : -1;
    }

    // Rebuilt on every call so that the fields point at this object's members, also in clones.
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override
    {
        try
        {
            return mSerialized.set(Derived::serializedFields(mAttributes));
        }
        catch (...)
        {
            reportError("cannot list the fields to serialize");
            return nullptr;
        }
    }

protected:
    static constexpr int32_t kInputCount = static_cast<int32_t>(std::tuple_size<decltype(Derived::kInputRanks)>::value);

    // Whether the tensor counts and ranks are the tables'; reports "expects <kShapes>" otherwise.
    template <typename Desc>
    bool ranksMatch(Desc const* in, int32_t nbInputs, Desc const* out, int32_t nbOutputs) const noexcept
    {
        if (ranksAre(in, nbInputs, Derived::kInputRanks) && ranksAre(out, nbOutputs, Derived::kOutputRanks))
        {
            return true;
        }
        reportError("expects %s", Derived::kShapes);
        return false;
    }

    Attributes mAttributes;

private:
    FieldCollection mSerialized;
};

} // namespace algm::trt
