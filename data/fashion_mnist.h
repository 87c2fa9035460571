// Fashion-MNIST: the idx files (train-images-idx3-ubyte, train-labels-idx1-ubyte and the t10k
// pair), gzipped or not, as distributed and as Debian's dataset-fashion-mnist installs them
// (/usr/share/datasets/fashion-mnist).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace sdlora::data {

// An idx file: big-endian magic (0, 0, type 0x08 = ubyte, number of dims), the dims, the bytes.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};
IdxArray read_idx(const std::string& path);

const std::vector<std::string>& fashion_mnist_class_names();
// folder holds the four files (each with or without .gz). Images are 28x28x1.
std::shared_ptr<Dataset> open_fashion_mnist(const std::string& folder, Split split);

}  // namespace sdlora::data
