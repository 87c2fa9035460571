// Shared by the cl tests: a tiny synthetic class-incremental problem (8 x 8 grey images whose
// class is drawn as a bright patch at a class-specific place, plus noise) and a tiny ViT config
// that learns it in a few epochs on the CPU.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cl/config.h"
#include "cl/task_loop.h"
#include "data/dataset.h"
#include "tests/common/test_util.h"

namespace sdlora::cl::test {

// n_classes classes, per_class images each, interleaved by class; the same images for a seed.
std::shared_ptr<data::Dataset> synthetic_dataset(int64_t n_classes, int64_t per_class,
                                                 uint64_t seed, const std::string& name);
Datasets synthetic_datasets(int64_t n_classes = 6, int64_t train_per_class = 24,
                            int64_t test_per_class = 10);

// Tasks of 2 classes, seed 1993, 6 epochs, batch 16, a 1-block ViT of width 16 on 8 x 8 images.
Config tiny_config(const std::string& method);

// The shared temporary folders (tests/common).
using ::sdlora::test::temp_dir;

}  // namespace sdlora::cl::test
