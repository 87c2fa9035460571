// Test support: tiny dataset files. Holds stb_image_write's implementation.
#include "tests/data/data_test_util.h"

#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

namespace sdlora::data::test {

namespace fs = std::filesystem;

std::string fixtures_dir() { return SDLORA_DATA_FIXTURES_DIR; }

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

void write_text(const std::string& path, const std::string& text) {
  write_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
}

void write_gzip(const std::string& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  gzFile f = gzopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("gzopen failed for " + path);
  const int n = gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
  if (n != static_cast<int>(bytes.size())) throw std::runtime_error("gzwrite failed for " + path);
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims,
                               const std::vector<uint8_t>& data) {
  std::vector<uint8_t> b = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(d >> s));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

void write_bar_dataset(const std::string& dir, const BarDataset& spec) {
  const uint32_t n = 10u * static_cast<uint32_t>(spec.per_class);
  for (const bool train : {true, false}) {
    std::vector<uint8_t> pixels, labels;
    uint32_t state = train ? spec.train_seed : spec.test_seed;
    for (uint32_t i = 0; i < n; ++i) {
      const int c = static_cast<int>(i % 10);
      labels.push_back(static_cast<uint8_t>(c));
      for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 8; ++x) {
          state = state * 1664525u + 1013904223u;
          const bool on = y / 2 == c % 4 && x / 4 == (c / 4) % 2 && (c < 8 || x % 2 == 0);
          pixels.push_back(
              static_cast<uint8_t>((on ? spec.ink : 0) + (state >> (32 - spec.noise_bits))));
        }
    }
    const std::string prefix = dir + (train ? "/train" : "/t10k");
    write_bytes(prefix + "-images-idx3-ubyte", idx_bytes({n, 8, 8}, pixels));
    write_bytes(prefix + "-labels-idx1-ubyte", idx_bytes({n}, labels));
  }
}

Image pattern_image(int h, int w, int c, int seed) {
  Image img(h, w, c);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int ch = 0; ch < c; ++ch)
        img.at(y, x, ch) = static_cast<uint8_t>((seed * 31 + y * 7 + x * 3 + ch * 50) % 256);
  return img;
}

Image smooth_image(int h, int w, int c, int seed) {
  Image img(h, w, c);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int ch = 0; ch < c; ++ch)
        img.at(y, x, ch) =
            static_cast<uint8_t>(40 + (seed * 13 + ch * 40) % 100 + (y * 60) / h + (x * 40) / w);
  return img;
}

std::vector<uint8_t> cifar_binary_bytes(const std::vector<Image>& images,
                                        const std::vector<int>& fine,
                                        const std::vector<int>& coarse) {
  std::vector<uint8_t> b;
  for (size_t i = 0; i < images.size(); ++i) {
    b.push_back(static_cast<uint8_t>(coarse[i]));
    b.push_back(static_cast<uint8_t>(fine[i]));
    for (int ch = 0; ch < 3; ++ch)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) b.push_back(images[i].at(y, x, ch));
  }
  return b;
}

namespace {

// Emits pickle opcodes (protocol 2, as Python 2's cPickle).
class PickleWriter {
 public:
  PickleWriter() { op(0x80, 2); }  // PROTO 2
  std::vector<uint8_t> finish() {
    b_.push_back('.');  // STOP
    return std::move(b_);
  }
  void op(uint8_t code) { b_.push_back(code); }
  void op(uint8_t code, uint8_t arg) {
    b_.push_back(code);
    b_.push_back(arg);
  }
  void u32(uint32_t v) {
    for (int s = 0; s < 32; s += 8) b_.push_back(static_cast<uint8_t>(v >> s));
  }
  // Python 2 str: SHORT_BINSTRING below 256 bytes, else BINSTRING.
  void str(const std::string& s) {
    if (s.size() < 256) {
      op('U', static_cast<uint8_t>(s.size()));
    } else {
      op('T');
      u32(static_cast<uint32_t>(s.size()));
    }
    b_.insert(b_.end(), s.begin(), s.end());
  }
  void integer(int v) {
    if (v >= 0 && v < 256) {
      op('K', static_cast<uint8_t>(v));  // BININT1
    } else if (v >= 0 && v < 65536) {
      op('M');  // BININT2
      b_.push_back(static_cast<uint8_t>(v));
      b_.push_back(static_cast<uint8_t>(v >> 8));
    } else {
      op('J');  // BININT
      u32(static_cast<uint32_t>(v));
    }
  }
  void global(const std::string& module, const std::string& name) {
    op('c');
    for (char ch : module + "\n" + name + "\n") b_.push_back(static_cast<uint8_t>(ch));
  }
  void put() { op('q', memo_++); }  // BINPUT, as cPickle memoises containers
  void int_list(const std::vector<int>& v) {
    op(']');
    put();
    op('(');
    for (int x : v) integer(x);
    op('e');  // APPENDS
  }
  void str_list(const std::vector<std::string>& v) {
    op(']');
    put();
    op('(');
    for (const std::string& s : v) str(s);
    op('e');
  }
  // numpy.core.multiarray._reconstruct(ndarray, (0,), 'b') then BUILD with
  // (1, shape, dtype('u1'), False, raw).
  void uint8_array(int64_t rows, int64_t cols, const std::string& raw) {
    global("numpy.core.multiarray", "_reconstruct");
    put();
    global("numpy", "ndarray");
    put();
    integer(0);
    op(0x85);  // TUPLE1
    str("b");
    op(0x87);  // TUPLE3
    op('R');
    put();
    op('(');
    integer(1);
    integer(static_cast<int>(rows));
    integer(static_cast<int>(cols));
    op(0x86);  // TUPLE2
    global("numpy", "dtype");
    put();
    str("u1");
    integer(0);
    integer(1);
    op(0x87);
    op('R');
    put();
    op('(');
    integer(3);
    str("|");
    op('N');
    op('N');
    op('N');
    op('J');
    u32(0xffffffffu);
    op('J');
    u32(0xffffffffu);
    integer(0);
    op('t');   // TUPLE
    op('b');   // BUILD (dtype state)
    op(0x89);  // NEWFALSE
    str(raw);
    op('t');
    op('b');  // BUILD (array state)
  }

 private:
  std::vector<uint8_t> b_;
  uint8_t memo_ = 1;
};

}  // namespace

std::vector<uint8_t> cifar_python_batch_pickle(const std::vector<Image>& images,
                                               const std::vector<int>& fine,
                                               const std::vector<int>& coarse) {
  std::string raw;
  std::vector<std::string> names;
  for (size_t i = 0; i < images.size(); ++i) {
    for (int ch = 0; ch < 3; ++ch)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) raw.push_back(static_cast<char>(images[i].at(y, x, ch)));
    names.push_back("image_" + std::to_string(i) + ".png");
  }
  PickleWriter w;
  w.op('}');
  w.put();
  w.op('(');
  w.str("data");
  w.uint8_array(static_cast<int64_t>(images.size()), 3072, raw);
  w.str("coarse_labels");
  w.int_list(coarse);
  w.str("batch_label");
  w.str("training batch 1 of 1");
  w.str("filenames");
  w.str_list(names);
  w.str("fine_labels");
  w.int_list(fine);
  w.op('u');  // SETITEMS
  return w.finish();
}

std::vector<uint8_t> cifar_python_meta_pickle(const std::vector<std::string>& fine_names,
                                              const std::vector<std::string>& coarse_names) {
  PickleWriter w;
  w.op('}');
  w.put();
  w.op('(');
  w.str("fine_label_names");
  w.str_list(fine_names);
  w.str("coarse_label_names");
  w.str_list(coarse_names);
  w.op('u');
  return w.finish();
}

void write_jpeg(const std::string& path, const Image& img, int quality) {
  fs::create_directories(fs::path(path).parent_path());
  if (!stbi_write_jpg(path.c_str(), img.w, img.h, img.c, img.pixels.data(), quality))
    throw std::runtime_error("stbi_write_jpg failed for " + path);
}

void write_png(const std::string& path, const Image& img) {
  fs::create_directories(fs::path(path).parent_path());
  if (!stbi_write_png(path.c_str(), img.w, img.h, img.c, img.pixels.data(), img.w * img.c))
    throw std::runtime_error("stbi_write_png failed for " + path);
}

}  // namespace sdlora::data::test
