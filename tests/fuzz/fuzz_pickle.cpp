// Pickles, and the CIFAR-100 python loader on top of them. A parsed pickle is walked without
// recursion (its depth is bounded, its graph acyclic); a CIFAR folder that opens has 32x32x3
// images and labels within its 100 classes.
#include <cstddef>
#include <cstdint>
#include <unordered_set>

#include "data/cifar100.h"
#include "data/pickle.h"
#include "tensor/error.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using sdlora::data::pickle::Object;
using sdlora::data::pickle::Ref;

// Visits every object reachable from root; checks heights and the array payloads.
void walk(const Ref& root) {
  std::vector<std::pair<const Object*, int>> pending = {{root.get(), 1}};
  size_t visited = 0;
  while (!pending.empty()) {
    const auto [o, depth] = pending.back();
    pending.pop_back();
    FUZZ_REQUIRE(o != nullptr, "null object in a parsed pickle");
    FUZZ_REQUIRE(depth <= sdlora::data::pickle::kMaxDepth + 1, "nesting beyond the limit");
    FUZZ_REQUIRE(++visited < (size_t{1} << 24), "object graph too large (a cycle?)");
    sdlora::fuzz::touch(o->s.data(), o->s.size());
    sdlora::fuzz::touch(o->raw.data(), o->raw.size());
    for (const Ref& r : o->items) pending.emplace_back(r.get(), depth + 1);
    for (const auto& [k, v] : o->dict) {
      pending.emplace_back(k.get(), depth + 1);
      pending.emplace_back(v.get(), depth + 1);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sdlora;
  using namespace sdlora::data;
  try {
    const pickle::Ref root = pickle::load(std::vector<uint8_t>(data, data + size), "fuzz.pkl");
    walk(root);
    if (root->kind == pickle::Kind::kDict)
      for (const auto& [k, v] : root->dict) {
        try {
          (void)pickle::to_int_vector(v, "value");
        } catch (const Error&) {
        }
        try {
          (void)pickle::to_string_vector(v, "value");
        } catch (const Error&) {
        }
      }
  } catch (const Error&) {
  }
  // The same bytes as a CIFAR-100 python folder's train file.
  fuzz::write_scratch("cifar-python/train", data, size);
  try {
    auto ds = open_cifar100_python(fuzz::scratch_dir() + "/cifar-python", Split::kTrain);
    FUZZ_REQUIRE(ds->class_names().size() == 100, "CIFAR-100 without 100 class names");
    for (int64_t i = 0; i < ds->size(); ++i) {
      FUZZ_REQUIRE(ds->label(i) >= 0 && ds->label(i) < 100, "label outside [0, 100)");
      const Image img = ds->image(i);
      FUZZ_REQUIRE(img.h == 32 && img.w == 32 && img.c == 3 && img.bytes() == 3072, "image shape");
    }
  } catch (const Error&) {
  }
  return 0;
}
