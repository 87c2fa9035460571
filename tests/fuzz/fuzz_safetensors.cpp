// safetensors files: whatever load_safetensors accepts has tensors whose dims multiply to their
// element count and whose bytes are all readable.
#include <cstddef>
#include <cstdint>

#include "nn/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sdlora;
  const std::string path = fuzz::write_scratch("in.safetensors", data, size);
  try {
    const SafetensorsFile f = load_safetensors(path);
    uint64_t total = 0;
    for (const auto& [name, t] : f.tensors) {
      int64_t n = 1;
      for (int64_t d : t.shape()) {
        FUZZ_REQUIRE(d >= 0, "negative dimension");
        n *= d;
      }
      FUZZ_REQUIRE(n == t.numel(), "dims do not multiply to the element count");
      FUZZ_REQUIRE(t.nbytes() == static_cast<size_t>(n) * dtype_size(t.dtype()), "byte size");
      total += t.nbytes();
      FUZZ_REQUIRE(total <= 2 * size,
                   "more tensor bytes than the file holds (F16 and BF16 widen 2x)");
      fuzz::touch(t.raw_data(), t.nbytes());
    }
  } catch (const Error&) {
  }
  return 0;
}
