// Image decoding: JPEG with libjpeg-turbo, PNG with stb_image (this file holds the stb_image
// implementation, PNG only: Debian's stb_image 2.27 JPEG decoder has a known out-of-bounds write).
#include "data/image_io.h"

#include <turbojpeg.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
#include <stb_image.h>

#include "data/file_io.h"
#include "tensor/error.h"

namespace sdlora::data {

namespace {

bool is_jpeg(const std::vector<uint8_t>& b) {
  return b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF;
}
bool is_png(const std::vector<uint8_t>& b) {
  static const uint8_t kMagic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  return b.size() >= 8 && std::memcmp(b.data(), kMagic, 8) == 0;
}

// stb_image pads a JPEG that ends early with zeros and returns an image; a complete file has an
// end-of-image marker (FF D9) after the start of its last scan (FF DA). Trailing bytes after the
// marker are allowed.
void check_jpeg_complete(const std::vector<uint8_t>& b, const std::string& name) {
  size_t last_sos = std::string::npos;
  for (size_t i = b.size() - 1; i-- > 0;) {
    if (b[i] == 0xFF && b[i + 1] == 0xDA) {
      last_sos = i;
      break;
    }
  }
  SDLORA_CHECK(last_sos != std::string::npos, "truncated or corrupt JPEG ", name,
               ": no image scan (SOS marker) found");
  for (size_t i = last_sos + 2; i + 1 < b.size(); ++i)
    if (b[i] == 0xFF && b[i + 1] == 0xD9) return;
  SDLORA_THROW("truncated JPEG ", name, ": the file ends before its end-of-image marker (",
               b.size(), " bytes)");
}

// A complete PNG is a chain of chunks (4 length bytes, 4 type bytes, data, 4 CRC bytes) ending
// with IEND. Every chunk must fit in the file: stb_image trusts IDAT lengths and grows its buffer
// to them (a 170-byte file could ask for 2 GB). Trailing bytes after IEND are allowed.
void check_png_complete(const std::vector<uint8_t>& b, const std::string& name) {
  size_t pos = 8;
  while (b.size() - pos >= 8) {
    const uint32_t len = (uint32_t{b[pos]} << 24) | (uint32_t{b[pos + 1]} << 16) |
                         (uint32_t{b[pos + 2]} << 8) | b[pos + 3];
    const std::string type(reinterpret_cast<const char*>(b.data() + pos + 4), 4);
    SDLORA_CHECK(len <= 0x7fffffffu && b.size() - pos - 8 >= uint64_t{len} + 4, "truncated PNG ",
                 name, ": its chunk at byte ", pos, " announces ", len,
                 " bytes, more than the file holds (", b.size(), " bytes)");
    if (type == "IEND") return;
    pos += 12 + static_cast<size_t>(len);
  }
  SDLORA_THROW("truncated PNG ", name, ": the file ends before its IEND chunk (", b.size(),
               " bytes)");
}

struct StbFree {
  void operator()(stbi_uc* p) const { stbi_image_free(p); }
};

// A TurboJPEG decompressor for one image: a handle is not reused after an error, where it can
// keep a stale state (a fresh one costs microseconds).
struct JpegHandle {
  tjhandle h = tjInitDecompress();
  JpegHandle() {
    SDLORA_CHECK(h != nullptr, "cannot start the JPEG decoder: ", tjGetErrorStr2(nullptr));
  }
  ~JpegHandle() { tjDestroy(h); }
  JpegHandle(const JpegHandle&) = delete;
  JpegHandle& operator=(const JpegHandle&) = delete;
};

void check_pixels(int64_t w, int64_t h, int64_t max_pixels, const std::string& name) {
  SDLORA_CHECK(w >= 1 && h >= 1, "corrupt image ", name, ": size ", w, " x ", h);
  SDLORA_CHECK(max_pixels <= 0 || w * h <= max_pixels, "image ", name, " is ", w, " x ", h, " = ",
               w * h, " pixels, more than the limit of ", max_pixels,
               " (raise it with the max_image_pixels option)");
}

Image decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& name, int channels,
                  int64_t max_pixels) {
  check_jpeg_complete(bytes, name);
  SDLORA_CHECK(bytes.size() <= 0xffffffffu, "image file too large: ", name);
  JpegHandle handle;
  tjhandle tj = handle.h;
  const auto size = static_cast<unsigned long>(bytes.size());
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  SDLORA_CHECK(tjDecompressHeader3(tj, bytes.data(), size, &w, &h, &subsamp, &colorspace) == 0,
               "corrupt JPEG ", name, ": ", tjGetErrorStr2(tj));
  check_pixels(w, h, max_pixels, name);
  SDLORA_CHECK(colorspace != TJCS_CMYK && colorspace != TJCS_YCCK, "JPEG ", name,
               " is CMYK, which is not supported (expected greyscale or colour)");
  const int want = channels != 0 ? channels : (colorspace == TJCS_GRAY ? 1 : 3);
  Image img(h, w, want);
  // Warnings (a corrupt stream libjpeg would patch over) are errors; progressive files are
  // limited to 500 scans so a hostile one cannot take minutes.
  const int rc =
      tjDecompress2(tj, bytes.data(), size, img.pixels.data(), w, 0, h,
                    want == 1 ? TJPF_GRAY : TJPF_RGB, TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS);
  SDLORA_CHECK(rc == 0, "corrupt JPEG ", name, ": ", tjGetErrorStr2(tj));
  return img;
}

Image decode_png(const std::vector<uint8_t>& bytes, const std::string& name, int channels,
                 int64_t max_pixels) {
  check_png_complete(bytes, name);
  SDLORA_CHECK(bytes.size() <= 0x7fffffffu, "image file too large: ", name);
  int w = 0, h = 0, file_channels = 0;
  SDLORA_CHECK(
      stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &file_channels),
      "corrupt PNG ", name, ": ", stbi_failure_reason());
  check_pixels(w, h, max_pixels, name);
  int want = channels;
  if (want == 0) want = (file_channels == 1 || file_channels == 2) ? 1 : 3;
  int got_w = 0, got_h = 0, got_c = 0;
  std::unique_ptr<stbi_uc, StbFree> px(stbi_load_from_memory(
      bytes.data(), static_cast<int>(bytes.size()), &got_w, &got_h, &got_c, want));
  SDLORA_CHECK(px != nullptr, "corrupt PNG ", name, ": ", stbi_failure_reason());
  SDLORA_CHECK(got_w == w && got_h == h, "corrupt PNG ", name, ": header says ", w, " x ", h,
               ", decoded ", got_w, " x ", got_h);
  Image img(got_h, got_w, want);
  std::memcpy(img.pixels.data(), px.get(), img.bytes());
  return img;
}

}  // namespace

Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name, int channels,
                   int64_t max_pixels) {
  SDLORA_CHECK(channels == 0 || channels == 1 || channels == 3,
               "decode_image: channels must be 0, 1 or 3, got ", channels);
  SDLORA_CHECK(!bytes.empty(), "empty image file ", name);
  if (is_jpeg(bytes)) return decode_jpeg(bytes, name, channels, max_pixels);
  if (is_png(bytes)) return decode_png(bytes, name, channels, max_pixels);
  SDLORA_THROW("not a JPEG or PNG image: ", name);
}

Image load_image(const std::string& path, int channels, int64_t max_pixels) {
  return decode_image(read_file(path), path, channels, max_pixels);
}

bool is_image_file_name(const std::string& name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return std::tolower(ch); });
  return ext == "jpg" || ext == "jpeg" || ext == "png";
}

}  // namespace sdlora::data
