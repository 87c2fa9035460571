// safetensors reading and writing (JSON header via nlohmann-json).
#include "nn/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "tensor/ops.h"

namespace sdlora {

namespace {

using json = nlohmann::json;

// IEEE half to float, including subnormals, infinities and NaN.
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  float f;
  if (exp == 0) {
    f = std::ldexp(static_cast<float>(man), -24);  // zero or subnormal
    return sign ? -f : f;
  }
  uint32_t bits;
  if (exp == 31)
    bits = sign | 0x7f800000u | (man << 13);
  else
    bits = sign | ((exp + 112u) << 23) | (man << 13);
  std::memcpy(&f, &bits, 4);
  return f;
}

struct FileDType {
  DType stored;  // dtype of the bytes as laid out in the file (F16 has none: converted)
  size_t size;
};

bool file_dtype(const std::string& name, FileDType& out) {
  static const std::map<std::string, FileDType> kTable = {
      {"F32", {DType::kFloat32, 4}}, {"BF16", {DType::kBFloat16, 2}}, {"F16", {DType::kFloat32, 2}},
      {"F64", {DType::kFloat64, 8}}, {"I64", {DType::kInt64, 8}},     {"I32", {DType::kInt32, 4}},
      {"U8", {DType::kUInt8, 1}}};
  auto it = kTable.find(name);
  if (it == kTable.end()) return false;
  out = it->second;
  return true;
}

const char* dtype_tag(DType t) {
  switch (t) {
    case DType::kFloat32:
      return "F32";
    case DType::kBFloat16:
      return "BF16";
    case DType::kFloat64:
      return "F64";
    case DType::kInt64:
      return "I64";
    case DType::kInt32:
      return "I32";
    case DType::kUInt8:
      return "U8";
  }
  return "?";
}

// Tensors of the project have at most 8 dimensions (tensor/backend.h's kMaxDims).
constexpr size_t kMaxRank = 8;

// Crash testing, as data/file_io.h's crash_point (the same SDLORA_CRASH_AT variable): the n-th
// save of a file of that name ends the process just before or after its rename.
void crash_point(const std::string& path, bool after_rename) {
  static const char* spec = std::getenv("SDLORA_CRASH_AT");
  if (spec == nullptr || *spec == '\0') return;
  static int64_t count = 0;
  const std::string name = std::filesystem::path(path).filename().string();
  const std::string s(spec);
  const size_t c1 = s.find(':'), c2 = s.rfind(':');
  if (c1 == std::string::npos || c2 == c1 || c1 != name.size() || s.compare(0, c1, name) != 0)
    return;
  if (!after_rename) ++count;
  const bool want_after = s.compare(c2 + 1, std::string::npos, "after") == 0;
  if (count == std::atoll(s.substr(c1 + 1, c2 - c1 - 1).c_str()) && want_after == after_rename)
    std::_Exit(86);
}

}  // namespace

SafetensorsFile load_safetensors(const std::string& path, Device device) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  SDLORA_CHECK(in.good(), "cannot open safetensors file '", path, "'");
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  SDLORA_CHECK(file_size >= 8, "safetensors file '", path, "' is truncated: ", file_size,
               " bytes, not even a header length");
  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  SDLORA_CHECK(header_len <= file_size - 8, "safetensors file '", path,
               "' is truncated or corrupt: header of ", header_len, " bytes announced, ",
               file_size - 8, " bytes follow");
  std::string header(static_cast<size_t>(header_len), '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  SDLORA_CHECK(in.good(), "safetensors file '", path, "': reading the ", header_len,
               "-byte header failed");
  json j;
  try {
    j = json::parse(header);
  } catch (const json::exception& e) {
    SDLORA_THROW("safetensors file '", path, "' has a bad JSON header: ", e.what());
  }
  SDLORA_CHECK(j.is_object(), "safetensors file '", path, "': the header is not a JSON object");
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file_size - data_start;

  SafetensorsFile out;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  std::vector<unsigned char> bytes;
  for (auto& [name, entry] : j.items()) {
    if (name == "__metadata__") {
      SDLORA_CHECK(entry.is_object(), "safetensors file '", path,
                   "': __metadata__ is not an object");
      for (auto& [k, v] : entry.items()) {
        SDLORA_CHECK(v.is_string(), "safetensors file '", path, "': metadata '", k,
                     "' is not a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "' in safetensors file '" + path + "'";
    SDLORA_CHECK(entry.is_object() && entry.contains("dtype") && entry.contains("shape") &&
                     entry.contains("data_offsets"),
                 where, ": entry needs dtype, shape and data_offsets");
    FileDType fd;
    const std::string tag = entry["dtype"].is_string() ? entry["dtype"].get<std::string>() : "?";
    SDLORA_CHECK(file_dtype(tag, fd), where, ": unsupported dtype '", tag,
                 "' (expected F32, F16, BF16, F64, I64, I32 or U8)");
    // The header is untrusted: every dimension and the byte size are computed with checked
    // arithmetic (a shape whose size wraps around 2^64 would otherwise sit on a few bytes).
    Shape shape;
    const json& jshape = entry["shape"];
    SDLORA_CHECK(jshape.is_array(), where, ": shape is not an array");
    SDLORA_CHECK(jshape.size() <= kMaxRank, where, ": shape has ", jshape.size(),
                 " dimensions (at most ", kMaxRank, ")");
    uint64_t want = fd.size;    // bytes of the tensor
    uint64_t extent = fd.size;  // the same with zero dimensions counted as one (bounds strides)
    for (size_t k = 0; k < jshape.size(); ++k) {
      const json& d = jshape[k];
      SDLORA_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0),
                   where, ": shape dimension ", k, " is not a non-negative integer");
      const uint64_t v = d.get<uint64_t>();
      SDLORA_CHECK(v <= static_cast<uint64_t>(INT64_MAX) &&
                       !__builtin_mul_overflow(extent, v == 0 ? 1 : v, &extent) &&
                       extent <= static_cast<uint64_t>(INT64_MAX),
                   where, ": shape dimension ", k, " (", v, ") makes the tensor's size overflow");
      want *= v;  // cannot overflow: |want| <= |extent|
      shape.push_back(static_cast<int64_t>(v));
    }
    const json& offs = entry["data_offsets"];
    SDLORA_CHECK(offs.is_array() && offs.size() == 2 && offs[0].is_number_unsigned() &&
                     offs[1].is_number_unsigned(),
                 where, ": data_offsets should be two non-negative integers");
    const uint64_t begin = offs[0].get<uint64_t>(), end = offs[1].get<uint64_t>();
    SDLORA_CHECK(begin <= end && end <= data_size, where, ": data_offsets [", begin, ", ", end,
                 ") out of range: the file holds ", data_size,
                 " data bytes (truncated or corrupt?)");
    SDLORA_CHECK(end - begin == want, where, ": ", end - begin, " bytes for shape ",
                 shape_str(shape), " of ", tag, " (expected ", want, ")");
    ranges.emplace_back(begin, end);

    bytes.resize(static_cast<size_t>(want));
    in.seekg(static_cast<std::streamoff>(data_start + begin));
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(want));
    SDLORA_CHECK(in.good() || want == 0, where, ": read failed");
    Tensor host = Tensor::empty(shape, fd.stored, Device::cpu());
    if (tag == "F16") {
      float* dst = host.data<float>();
      for (int64_t i = 0; i < host.numel(); ++i) {
        uint16_t h;
        std::memcpy(&h, bytes.data() + 2 * i, 2);
        dst[i] = half_to_float(h);
      }
    } else if (want > 0) {
      std::memcpy(host.raw_data(), bytes.data(), static_cast<size_t>(want));
    }
    if (host.dtype() == DType::kBFloat16) host = cast(host, DType::kFloat32);
    out.tensors[name] = host.to(device);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    SDLORA_CHECK(ranges[i].first >= ranges[i - 1].second || ranges[i].first == ranges[i].second,
                 "safetensors file '", path, "': tensors overlap at bytes ", ranges[i].first);
  return out;
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    SDLORA_CHECK(t.defined(), "save_safetensors '", path, "': tensor '", name, "' is undefined");
    SDLORA_CHECK(name != "__metadata__", "save_safetensors '", path, "': reserved tensor name");
    header[name] = {{"dtype", dtype_tag(t.dtype())},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data 8-byte aligned
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    SDLORA_CHECK(out.good(), "cannot write safetensors file '", tmp, "'");
    unsigned char len_bytes[8];
    uint64_t len = text.size();
    for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>(len >> (8 * i));
    out.write(reinterpret_cast<const char*>(len_bytes), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& [name, t] : tensors) {
      const Tensor host = t.to(Device::cpu());
      out.write(static_cast<const char*>(host.raw_data()),
                static_cast<std::streamsize>(host.nbytes()));
    }
    out.flush();
    SDLORA_CHECK(out.good(), "writing safetensors file '", tmp, "' failed (disk full?)");
  }
  crash_point(path, false);
  SDLORA_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename '", tmp, "' to '", path,
               "'");
  crash_point(path, true);
}

}  // namespace sdlora
