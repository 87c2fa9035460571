// Image resampling with PIL's semantics (Image.resize, which torchvision calls on PIL images):
// separable filters whose support widens with the downscale factor (antialiasing), 8-bit
// fixed-point coefficients, a horizontal pass then a vertical pass, each rounded to uint8.
// On uint8 images the results equal PIL's bit for bit for bilinear and bicubic.
#pragma once

#include <string>

#include "data/image.h"

namespace sdlora::data {

enum class Interp { kNearest, kBilinear, kBicubic };
const char* interp_name(Interp i);
Interp parse_interp(const std::string& name);  // "nearest", "bilinear", "bicubic"

// in (h, w, c) -> (out_h, out_w, c).
Image resize(const Image& in, int out_h, int out_w, Interp interp);
// Rows [top, top + h) and columns [left, left + w), which must lie inside the image.
Image crop(const Image& in, int top, int left, int h, int w);

}  // namespace sdlora::data
