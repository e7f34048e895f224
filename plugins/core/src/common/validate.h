// Argument checks shared by the CPU and CUDA launchers (a launcher returns kInvalidArgument on failure).
#pragma once

#include "algm/kernels.h"

namespace algm
{

// Positive sizes, windows of >= 2 tokens that tile the grid, counts that fit int32 indexing, perImage 0 or 1.
bool isValid(LocalMergeParams const& params);

// Positive sizes, T >= 2 (one A and one B token), layer number >= 1, perImage 0 or 1.
bool isValid(GlobalMergeParams const& params);

// Positive sizes.
bool isValid(UnmergeParams const& params);

// Float32 or float16.
bool isValid(DataType dtype);

} // namespace algm
