// idx files (Fashion-MNIST), plain or gzipped: whatever read_idx accepts has dims that multiply
// to exactly its data size; a Fashion-MNIST folder made of the input opens only with a
// consistent image and label count.
#include <cstddef>
#include <cstdint>

#include "data/fashion_mnist.h"
#include "tensor/error.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sdlora;
  using namespace sdlora::data;
  const std::string path = fuzz::write_scratch("idx/train-images-idx3-ubyte", data, size);
  try {
    const IdxArray a = read_idx(path);
    uint64_t n = 1;
    for (uint32_t d : a.dims) n *= d;
    FUZZ_REQUIRE(n == a.data.size(), "dims do not multiply to the data size");
    fuzz::touch(a.data.data(), a.data.size());
  } catch (const Error&) {
  }
  // As the images of a folder whose labels file is fixed (two labels).
  static const std::vector<uint8_t> labels = {0, 0, 8, 1, 0, 0, 0, 2, 3, 9};
  fuzz::write_scratch("idx/train-labels-idx1-ubyte", labels.data(), labels.size());
  try {
    auto ds = open_fashion_mnist(fuzz::scratch_dir() + "/idx", Split::kTrain);
    FUZZ_REQUIRE(ds->size() == 2, "image count differs from the label count");
    for (int64_t i = 0; i < ds->size(); ++i) {
      const Image img = ds->image(i);
      FUZZ_REQUIRE(img.bytes() == static_cast<size_t>(img.h) * img.w * img.c, "image bytes");
    }
  } catch (const Error&) {
  }
  return 0;
}
