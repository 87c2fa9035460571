// CIFAR-100 in both published distributions: binary (train.bin / test.bin, 3074-byte records
// of coarse label, fine label and 32x32 RGB planes; fine_label_names.txt) and python (the
// pickled `train` / `test` dicts and `meta`, read natively). Labels are the 100 fine classes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace sdlora::data {

// The 100 fine class names in label order (used when the files carry none).
const std::vector<std::string>& cifar100_class_names();

// folder: a cifar-100-binary or cifar-100-python folder, or a folder holding one of them.
std::shared_ptr<Dataset> open_cifar100(const std::string& folder, Split split);
std::shared_ptr<Dataset> open_cifar100_binary(const std::string& folder, Split split);
std::shared_ptr<Dataset> open_cifar100_python(const std::string& folder, Split split);

}  // namespace sdlora::data
