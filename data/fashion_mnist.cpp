// Fashion-MNIST idx reader.
#include "data/fashion_mnist.h"

#include <filesystem>

#include "data/file_io.h"
#include "tensor/error.h"

namespace sdlora::data {

IdxArray read_idx(const std::string& path) {
  const std::vector<uint8_t> b = read_file_maybe_gzip(path);
  SDLORA_CHECK(b.size() >= 4, "idx file ", path, " is too short (", b.size(),
               " bytes) for its header");
  SDLORA_CHECK(b[0] == 0 && b[1] == 0, "not an idx file: ", path, " (bad magic)");
  SDLORA_CHECK(b[2] == 0x08, "idx file ", path, ": element type 0x", std::hex, int{b[2]},
               " is not unsigned bytes (0x08)");
  const int ndim = b[3];
  SDLORA_CHECK(ndim >= 1 && ndim <= 4, "idx file ", path, ": ", ndim,
               " dimensions (expected 1 to 4)");
  const size_t header = 4 + 4 * static_cast<size_t>(ndim);
  SDLORA_CHECK(b.size() >= header, "idx file ", path, " is too short (", b.size(),
               " bytes) for its header");
  IdxArray a;
  // The dimensions are untrusted: their product is checked for overflow (it wraps with four
  // 32-bit dimensions) before it is compared with the bytes present.
  uint64_t n = 1;
  for (int d = 0; d < ndim; ++d) {
    const uint8_t* p = b.data() + 4 + 4 * d;
    const uint32_t v =
        (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
    a.dims.push_back(v);
    SDLORA_CHECK(!__builtin_mul_overflow(n, uint64_t{v}, &n), "idx file ", path,
                 ": the dimensions' product overflows (dimension ", d, " is ", v, ")");
  }
  SDLORA_CHECK(b.size() - header == n, "idx file ", path, " holds ", b.size() - header,
               " data bytes, its header promises ", n);
  a.data.assign(b.begin() + static_cast<std::ptrdiff_t>(header), b.end());
  return a;
}

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> kNames = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                  "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                  "Bag",         "Ankle boot"};
  return kNames;
}

namespace {
// The file `stem` in folder, plain or gzipped.
std::string find_idx(const std::string& folder, const std::string& stem) {
  namespace fs = std::filesystem;
  for (const char* ext : {"", ".gz"}) {
    const fs::path p = fs::path(folder) / (stem + ext);
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  SDLORA_THROW("Fashion-MNIST file ", stem, " (or ", stem, ".gz) not found in ", folder);
}
}  // namespace

std::shared_ptr<Dataset> open_fashion_mnist(const std::string& folder, Split split) {
  std::error_code ec;
  SDLORA_CHECK(std::filesystem::is_directory(folder, ec),
               "Fashion-MNIST folder not found: ", folder);
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  const std::string images_path = find_idx(folder, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_idx(folder, prefix + "-labels-idx1-ubyte");
  IdxArray images = read_idx(images_path);
  const IdxArray labels = read_idx(labels_path);
  SDLORA_CHECK(images.dims.size() == 3, "idx file ", images_path,
               ": expected 3 dimensions (n, rows, cols), got ", images.dims.size());
  SDLORA_CHECK(labels.dims.size() == 1, "idx file ", labels_path, ": expected 1 dimension, got ",
               labels.dims.size());
  // Rows and columns become ints of the image: bound them (the data size check above already
  // ties their product to the bytes present).
  SDLORA_CHECK(images.dims[1] >= 1 && images.dims[2] >= 1 && images.dims[1] <= 65535 &&
                   images.dims[2] <= 65535,
               "idx file ", images_path, ": images of ", images.dims[1], " x ", images.dims[2],
               " pixels (expected 1 to 65535 on each side)");
  SDLORA_CHECK(images.dims[0] == labels.dims[0], "Fashion-MNIST ", images_path, " holds ",
               images.dims[0], " images but ", labels_path, " holds ", labels.dims[0], " labels");
  std::vector<int64_t> y(labels.data.begin(), labels.data.end());
  for (size_t i = 0; i < y.size(); ++i)
    SDLORA_CHECK(y[i] < 10, "Fashion-MNIST ", labels_path, ": label ", y[i], " of record ", i,
                 " is not in [0, 10)");
  return std::make_shared<InMemoryDataset>(
      std::string("fashion-mnist ") + split_name(split) + " (" + folder + ")", images_path,
      static_cast<int>(images.dims[1]), static_cast<int>(images.dims[2]), 1, std::move(images.data),
      std::move(y), fashion_mnist_class_names());
}

}  // namespace sdlora::data
