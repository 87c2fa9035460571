// CIFAR-100 binary files (train.bin) and their optional fine_label_names.txt: the first input
// byte chooses which of the two the rest of the input is.
#include <cstddef>
#include <cstdint>

#include "data/cifar100.h"
#include "tensor/error.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sdlora;
  using namespace sdlora::data;
  if (size == 0) return 0;
  const std::string dir = fuzz::scratch_dir() + "/cifar-binary";
  const bool names = data[0] & 1;
  static const std::vector<uint8_t> one_record(3074, 7);
  if (names) {
    fuzz::write_scratch("cifar-binary/train.bin", one_record.data(), one_record.size());
    fuzz::write_scratch("cifar-binary/fine_label_names.txt", data + 1, size - 1);
  } else {
    std::filesystem::remove(dir + "/fine_label_names.txt");
    fuzz::write_scratch("cifar-binary/train.bin", data + 1, size - 1);
  }
  try {
    auto ds = open_cifar100_binary(dir, Split::kTrain);
    FUZZ_REQUIRE(ds->class_names().size() == 100, "CIFAR-100 without 100 class names");
    FUZZ_REQUIRE(names || static_cast<size_t>(ds->size()) * 3074 == size - 1, "record count");
    for (int64_t i = 0; i < ds->size(); ++i) {
      FUZZ_REQUIRE(ds->label(i) >= 0 && ds->label(i) < 100, "label outside [0, 100)");
      FUZZ_REQUIRE(ds->image(i).bytes() == 3072, "image size");
    }
  } catch (const Error&) {
  }
  return 0;
}
