// Image decoding (JPEG through libjpeg-turbo, PNG through stb_image) under a pixel limit: a
// decoded image has the size its header announced, within the limit, in the channels asked for.
#include <cstddef>
#include <cstdint>

#include "data/image_io.h"
#include "tensor/error.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sdlora;
  using namespace sdlora::data;
  constexpr int64_t kLimit = 1 << 20;  // keeps each run small; the limit itself is under test
  const std::vector<uint8_t> bytes(data, data + size);
  for (int channels : {0, 1, 3}) {
    try {
      const Image img = decode_image(bytes, "fuzz-image", channels, kLimit);
      FUZZ_REQUIRE(img.h >= 1 && img.w >= 1, "empty image decoded");
      FUZZ_REQUIRE(static_cast<int64_t>(img.h) * img.w <= kLimit, "pixel limit not enforced");
      FUZZ_REQUIRE(channels == 0 ? (img.c == 1 || img.c == 3) : img.c == channels, "channels");
      FUZZ_REQUIRE(img.bytes() == static_cast<size_t>(img.h) * img.w * img.c, "pixel bytes");
      fuzz::touch(img.pixels.data(), img.bytes());
    } catch (const Error&) {
    }
  }
  return 0;
}
