// Test support for the data suite: writers of tiny dataset files in
// every format the readers accept (idx plain and gzipped, CIFAR-100 binary and python pickles,
// JPEG and PNG trees), so the tests need nothing outside the repository.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"
#include "tests/common/test_util.h"

namespace sdlora::data::test {

// The shared temporary folder (tests/common).
using ::sdlora::test::TempDir;

// The folder of the checked-in fixtures (tests/data/fixtures).
std::string fixtures_dir();

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes);
void write_text(const std::string& path, const std::string& text);
// gzip-compresses bytes into path.
void write_gzip(const std::string& path, const std::vector<uint8_t>& bytes);
std::vector<uint8_t> read_bytes(const std::string& path);

// An idx file of unsigned bytes with the given dims (type 0x08).
std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data);

// A Fashion-MNIST-format folder (uncompressed idx files named as the distribution names them,
// train and t10k): 10 classes of 8 x 8 images in class order 0, 1, ..., 9, 0, 1, ..., the class
// drawn as a 2 x 4 bar of brightness `ink` at a class-specific place (classes 8 and 9 share
// places with 0 and 1, with every other column), plus noise below 2^noise_bits from a linear
// congruential generator started at the split's seed.
struct BarDataset {
  int per_class = 12;
  uint32_t train_seed = 5, test_seed = 11;
  int ink = 180;
  int noise_bits = 7;
};
void write_bar_dataset(const std::string& dir, const BarDataset& spec);

// A test image whose pixel (y, x, ch) is (seed * 31 + y * 7 + x * 3 + ch * 50) % 256.
Image pattern_image(int h, int w, int c, int seed);
// A smooth image that survives JPEG compression nearly unchanged (for decode checks).
Image smooth_image(int h, int w, int c, int seed);

// CIFAR-100 binary records: per image, coarse label, fine label, R, G and B planes.
// images are 32x32x3 HWC.
std::vector<uint8_t> cifar_binary_bytes(const std::vector<Image>& images,
                                        const std::vector<int>& fine,
                                        const std::vector<int>& coarse);

// A pickle with the structure of CIFAR-100's python files as Python 2's cPickle wrote them
// (protocol 2, SHORT_BINSTRING keys, BINSTRING array bytes, numpy _reconstruct + BUILD).
std::vector<uint8_t> cifar_python_batch_pickle(const std::vector<Image>& images,
                                               const std::vector<int>& fine,
                                               const std::vector<int>& coarse);
std::vector<uint8_t> cifar_python_meta_pickle(const std::vector<std::string>& fine_names,
                                              const std::vector<std::string>& coarse_names);

// JPEG (quality 95) or PNG files.
void write_jpeg(const std::string& path, const Image& img, int quality = 95);
void write_png(const std::string& path, const Image& img);

}  // namespace sdlora::data::test
