// Image-folder split files and list files. The first input byte chooses: even, the rest is the
// split file of a one-tree folder with classes a and b; odd, the rest is a *_train.txt list and,
// after the first NUL byte, a *_test.txt list. Whatever opens has labels within its classes.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "data/image_folder.h"
#include "tensor/error.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

// max_classes: what the input can declare (two folders, or one per list line at most).
void check(const sdlora::data::Dataset& ds, size_t max_classes) {
  const auto n_classes = static_cast<int64_t>(ds.class_names().size());
  FUZZ_REQUIRE(n_classes >= 1, "a dataset without classes");
  FUZZ_REQUIRE(n_classes <= static_cast<int64_t>(max_classes), "more classes than declared");
  for (int64_t i = 0; i < ds.size(); ++i)
    FUZZ_REQUIRE(ds.label(i) >= 0 && ds.label(i) < n_classes, "label outside the classes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sdlora;
  using namespace sdlora::data;
  if (size == 0) return 0;
  const std::string& dir = fuzz::scratch_dir();
  ImageFolderOptions o;
  if ((data[0] & 1) == 0) {
    static const bool tree = [&] {
      for (const char* f : {"tree/a/1.png", "tree/a/2.png", "tree/b/3.jpg"})
        fuzz::write_scratch(f, "");
      return true;
    }();
    (void)tree;
    o.split_file = fuzz::write_scratch("tree-split.txt", data + 1, size - 1);
    for (Split s : {Split::kTrain, Split::kTest}) {
      o.split = s;
      try {
        check(*open_image_folder(dir + "/tree", o), 2);
      } catch (const Error&) {
      }
    }
    return 0;
  }
  const auto* nul = static_cast<const uint8_t*>(std::memchr(data + 1, 0, size - 1));
  const size_t train_size = nul ? static_cast<size_t>(nul - (data + 1)) : size - 1;
  fuzz::write_scratch("lists/x_train.txt", data + 1, train_size);
  const size_t rest = nul ? size - 1 - train_size - 1 : 0;
  fuzz::write_scratch("lists/x_test.txt", nul ? nul + 1 : data, rest);
  for (Split s : {Split::kTrain, Split::kTest}) {
    o.split = s;
    try {
      check(*open_image_folder(dir + "/lists", o), train_size / 3 + 1);
    } catch (const Error&) {
    }
  }
  return 0;
}
