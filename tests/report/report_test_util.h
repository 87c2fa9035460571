// Shared by the report tests: tiny run folders (a Fashion-MNIST-format dataset of 8 x 8 images
// written here, a 1-block ViT, a few epochs), trained once per test program, and PNG checks.
#pragma once

#include <cstdint>
#include <string>

#include "cl/config.h"

namespace sdlora::report::test {

// The folder holding the tiny runs: ROOT/<method>/ for sdlora, sdlora-kd (tau 0, so every
// direction is kept) and seq-lora, 3 tasks each (4, 3 and 3 classes). Trained on first use.
const std::string& tiny_runs_root();
cl::Config tiny_run_config(const std::string& method, const std::string& data_dir);

// Width and height from a PNG's IHDR chunk; throws unless the file starts with the PNG
// signature followed by IHDR.
struct PngSize {
  uint32_t width = 0, height = 0;
};
PngSize png_size(const std::string& path);

// The fraction of pixels in the central region [lo, hi) of both axes (fractions of the size)
// whose colour differs from the image's top-left pixel (the background).
double ink_fraction(const std::string& path, double lo = 0.2, double hi = 0.8);

}  // namespace sdlora::report::test
