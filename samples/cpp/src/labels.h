// From logits to a class-index label map.
#pragma once

#include "image.h"

#include <cstdint>
#include <vector>

namespace sample
{

struct LabelMap
{
    int width = 0;
    int height = 0;
    std::vector<int32_t> labels; // width * height class indices
};

// Per pixel, the class with the largest logit (the first on ties, like numpy's argmax).
// `logits` is one image [classes, height, width].
LabelMap argmaxClasses(std::vector<float> const& logits, int classes, int height, int width);

// Nearest-neighbour resize (PIL's Image.NEAREST sampling: source = floor((x + 0.5) * in / out)).
LabelMap resizeNearest(LabelMap const& map, int width, int height);

// The class palette shared with Python (algm_export.datasets.palette): class k gets the PASCAL VOC colour of
// k (bits of k spread over R, G, B). `classes` RGB triples.
std::vector<uint8_t> palette(int classes);

// Pixels per class, for the classes 0 .. classes-1.
std::vector<int64_t> classHistogram(LabelMap const& map, int classes);

} // namespace sample
