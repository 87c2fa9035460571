// Whole-file reads: plain and gzip-compressed.
#include "data/file_io.h"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>

#include "tensor/error.h"

namespace sdlora::data {

namespace {
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
}  // namespace

std::vector<uint8_t> read_file(const std::string& path) {
  std::error_code ec;
  SDLORA_CHECK(std::filesystem::exists(path, ec), "file not found: ", path);
  SDLORA_CHECK(!std::filesystem::is_directory(path, ec), "expected a file, found a folder: ", path);
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  SDLORA_CHECK(f != nullptr, "cannot open ", path, ": ", std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f.get())) > 0)
    bytes.insert(bytes.end(), buf, buf + n);
  SDLORA_CHECK(!std::ferror(f.get()), "error reading ", path, ": ", std::strerror(errno));
  return bytes;
}

std::vector<uint8_t> read_file_maybe_gzip(const std::string& path) {
  std::vector<uint8_t> raw = read_file(path);
  if (raw.size() < 2 || raw[0] != 0x1f || raw[1] != 0x8b) return raw;

  std::vector<uint8_t> out;
  z_stream zs{};
  // 16 + MAX_WBITS: expect a gzip header and trailer (and check the CRC).
  SDLORA_CHECK(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK, "zlib inflateInit2 failed for ", path);
  zs.next_in = raw.data();
  zs.avail_in = static_cast<uInt>(raw.size());
  uint8_t buf[1 << 16];
  int ret = Z_OK;
  while (ret != Z_STREAM_END) {
    zs.next_out = buf;
    zs.avail_out = sizeof(buf);
    ret = inflate(&zs, Z_NO_FLUSH);
    if (ret != Z_OK && ret != Z_STREAM_END) {
      const std::string msg =
          zs.msg ? zs.msg : (ret == Z_BUF_ERROR ? "unexpected end of data" : "error");
      inflateEnd(&zs);
      SDLORA_THROW("corrupt or truncated gzip file ", path, ": ", msg);
    }
    out.insert(out.end(), buf, buf + (sizeof(buf) - zs.avail_out));
    if (ret == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      SDLORA_THROW("truncated gzip file ", path, ": the stream ends before its trailer");
    }
  }
  inflateEnd(&zs);
  return out;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    SDLORA_CHECK(f.good(), "cannot write ", tmp, ": ", std::strerror(errno));
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    f.close();
    SDLORA_CHECK(f.good(), "error writing ", tmp);
  }
  crash_point(path, false);
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  SDLORA_CHECK(!ec, "cannot rename ", tmp, " to ", path, ": ", ec.message());
  crash_point(path, true);
}

void crash_point(const std::string& path, bool after_rename) {
  static const char* spec = std::getenv("SDLORA_CRASH_AT");
  if (spec == nullptr || *spec == '\0') return;
  static std::mutex mutex;
  static std::map<std::string, int64_t> writes;  // per file name, counted before the rename
  const std::string name = std::filesystem::path(path).filename().string();
  const std::string s(spec);
  const size_t c1 = s.find(':'), c2 = s.rfind(':');
  if (c1 == std::string::npos || c2 == c1 || s.compare(0, c1, name) != 0 || c1 != name.size())
    return;
  const int64_t n = std::atoll(s.substr(c1 + 1, c2 - c1 - 1).c_str());
  const bool want_after = s.compare(c2 + 1, std::string::npos, "after") == 0;
  std::lock_guard<std::mutex> lock(mutex);
  int64_t& count = writes[name];
  if (!after_rename) ++count;
  if (count == n && want_after == after_rename) std::_Exit(86);
}

}  // namespace sdlora::data
