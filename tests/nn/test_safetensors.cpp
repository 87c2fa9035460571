// safetensors: files built byte by byte in the test are read correctly; round trips are exact;
// corrupt files fail with errors naming the file and the tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "nn/safetensors.h"
#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora {
namespace {

namespace fs = std::filesystem;

std::string temp_path(const std::string& name) { return test::temp_path("st_" + name); }

// header JSON + raw data bytes, with the 8-byte little-endian length in front.
void write_raw(const std::string& path, const std::string& header, const std::string& data,
               int64_t announced = -1) {
  std::ofstream out(path, std::ios::binary);
  const uint64_t len = announced < 0 ? header.size() : static_cast<uint64_t>(announced);
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((len >> (8 * i)) & 0xff));
  out << header << data;
}

template <typename T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::string error_of(const std::string& path) {
  try {
    (void)load_safetensors(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, ReadsAHandBuiltFileWithEveryDtype) {
  const std::string path = temp_path("hand.safetensors");
  // F16: 1.0 = 0x3c00, -2.0 = 0xc000, 65504 = 0x7bff, smallest subnormal 2^-24 = 0x0001.
  const std::vector<uint16_t> f16{0x3c00, 0xc000, 0x7bff, 0x0001};
  // BF16: 1.5 = 0x3fc0, -0.25 = 0xbe80.
  const std::vector<uint16_t> bf16{0x3fc0, 0xbe80};
  const std::vector<float> f32{0.5f, -1.25f, 3.0f, 4.0f, 5.0f, 6.0f};
  const std::vector<int64_t> i64{-1, int64_t{1} << 40};
  const std::vector<int32_t> i32{7};
  const std::vector<uint8_t> u8{0, 200, 255};
  std::string data =
      bytes_of(f32) + bytes_of(f16) + bytes_of(bf16) + bytes_of(i64) + bytes_of(i32) + bytes_of(u8);
  const std::string header = R"({"__metadata__":{"format":"pt","sdlora_mode":"paper"},)"
                             R"("w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                             R"("h":{"dtype":"F16","shape":[4],"data_offsets":[24,32]},)"
                             R"("b":{"dtype":"BF16","shape":[1,2],"data_offsets":[32,36]},)"
                             R"("l":{"dtype":"I64","shape":[2],"data_offsets":[36,52]},)"
                             R"("i":{"dtype":"I32","shape":[],"data_offsets":[52,56]},)"
                             R"("u":{"dtype":"U8","shape":[3],"data_offsets":[56,59]}})";
  write_raw(path, header, data);
  const SafetensorsFile f = load_safetensors(path);
  EXPECT_EQ(f.metadata.at("sdlora_mode"), "paper");
  EXPECT_EQ(f.metadata.at("format"), "pt");
  EXPECT_EQ(f.tensors.at("w").shape(), (Shape{2, 3}));
  EXPECT_EQ(f.tensors.at("w").to_vector<float>(), f32);
  EXPECT_EQ(f.tensors.at("h").dtype(), DType::kFloat32);
  EXPECT_EQ(f.tensors.at("h").to_vector<float>(),
            (std::vector<float>{1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24)}));
  EXPECT_EQ(f.tensors.at("b").dtype(), DType::kFloat32);
  EXPECT_EQ(f.tensors.at("b").to_vector<float>(), (std::vector<float>{1.5f, -0.25f}));
  EXPECT_EQ(f.tensors.at("l").to_vector<int64_t>(), i64);
  EXPECT_EQ(f.tensors.at("i").ndim(), 0);
  EXPECT_EQ(f.tensors.at("i").to_vector<int32_t>(), i32);
  EXPECT_EQ(f.tensors.at("u").to_vector<uint8_t>(), u8);
  fs::remove(path);
}

TEST(Safetensors, RoundTripIsExact) {
  const std::string path = temp_path("round.safetensors");
  std::map<std::string, Tensor> in;
  in["a.weight"] = test::random_tensor({3, 5}, 1);
  in["a.bias"] = test::random_tensor({5}, 2, -1, 1, DType::kFloat64);
  in["labels"] = Tensor::from_vector<int64_t>({3, 1, 4}, {3});
  in["image"] = Tensor::from_vector<uint8_t>({1, 2, 3, 4}, {2, 2});
  in["empty"] = Tensor::zeros({0, 4});
  save_safetensors(path, in, {{"note", "round trip"}});
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  const SafetensorsFile out = load_safetensors(path);
  ASSERT_EQ(out.tensors.size(), in.size());
  EXPECT_EQ(out.metadata.at("note"), "round trip");
  EXPECT_EQ(out.tensors.at("a.weight").to_vector<float>(), in["a.weight"].to_vector<float>());
  EXPECT_EQ(out.tensors.at("a.bias").to_vector<double>(), in["a.bias"].to_vector<double>());
  EXPECT_EQ(out.tensors.at("labels").to_vector<int64_t>(), in["labels"].to_vector<int64_t>());
  EXPECT_EQ(out.tensors.at("image").to_vector<uint8_t>(), in["image"].to_vector<uint8_t>());
  EXPECT_EQ(out.tensors.at("empty").shape(), (Shape{0, 4}));
  fs::remove(path);
}

TEST(Safetensors, CorruptFilesFailNamingFileAndTensor) {
  const std::string path = temp_path("bad.safetensors");
  const std::string four_floats = bytes_of(std::vector<float>{1, 2, 3, 4});

  write_raw(path, R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
            four_floats.substr(0, 8));
  std::string msg = error_of(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("'w'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("out of range"), std::string::npos) << msg;

  write_raw(path, R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]})", four_floats);
  msg = error_of(path);
  EXPECT_NE(msg.find("bad JSON header"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;

  write_raw(path, "{}", "", 1000);
  msg = error_of(path);
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;

  write_raw(path, R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", four_floats);
  msg = error_of(path);
  EXPECT_NE(msg.find("expected 12"), std::string::npos) << msg;

  write_raw(path, R"({"w":{"dtype":"C64","shape":[2],"data_offsets":[0,16]}})", four_floats);
  msg = error_of(path);
  EXPECT_NE(msg.find("unsupported dtype 'C64'"), std::string::npos) << msg;

  write_raw(
      path,
      R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"v":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
      four_floats);
  msg = error_of(path);
  EXPECT_NE(msg.find("overlap"), std::string::npos) << msg;

  std::ofstream(path, std::ios::binary | std::ios::trunc) << "abc";
  msg = error_of(path);
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;

  fs::remove(path);
  msg = error_of(path);
  EXPECT_NE(msg.find("cannot open"), std::string::npos) << msg;
}

}  // namespace
}  // namespace sdlora
