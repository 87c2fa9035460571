// safetensors headers a hostile file could carry: sizes that wrap around 2^64, absurd ranks,
// deep JSON. Each must be an error naming the file and tensor, never an allocation or a read
// past the bytes present.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "nn/safetensors.h"
#include "tests/common/test_util.h"

namespace sdlora {
namespace {

namespace fs = std::filesystem;

std::string temp_path(const std::string& name) { return test::temp_path("sth_" + name); }

void write_raw(const std::string& path, const std::string& header, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const uint64_t len = header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((len >> (8 * i)) & 0xff));
  out << header << data;
}

std::string error_of(const std::string& path) {
  try {
    (void)load_safetensors(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(SafetensorsHostile, ShapeWhoseByteSizeWrapsIsRefused) {
  const std::string path = temp_path("wrap.safetensors");
  // 2^62 F32 elements are 2^64 bytes: the unchecked product wraps to 0 and matched [0, 0).
  write_raw(path, R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})",
            "");
  std::string msg = error_of(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("'w'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("overflow"), std::string::npos) << msg;
  // Wrapping to exactly the 8 bytes present: 2^61 + 1 elements of 8 bytes = 2^64 + 8.
  write_raw(path, R"({"w":{"dtype":"F64","shape":[2305843009213693953],"data_offsets":[0,8]}})",
            std::string(8, '\0'));
  msg = error_of(path);
  EXPECT_NE(msg.find("overflow"), std::string::npos) << msg;
  // Two dimensions whose product wraps while a zero dimension hides it from the element count.
  write_raw(path, R"({"w":{"dtype":"U8","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})",
            "");
  msg = error_of(path);
  EXPECT_NE(msg.find("overflow"), std::string::npos) << msg;
  // A dimension above INT64_MAX.
  write_raw(path, R"({"w":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,0]}})",
            "");
  msg = error_of(path);
  EXPECT_NE(msg.find("overflow"), std::string::npos) << msg;
  fs::remove(path);
}

TEST(SafetensorsHostile, RankDepthAndBadValuesAreRefused) {
  const std::string path = temp_path("bad.safetensors");
  write_raw(path, R"({"w":{"dtype":"U8","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,1]}})", "x");
  std::string msg = error_of(path);
  EXPECT_NE(msg.find("at most 8"), std::string::npos) << msg;

  write_raw(path, R"({"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", "x");
  msg = error_of(path);
  EXPECT_NE(msg.find("dimension 0 is not a non-negative integer"), std::string::npos) << msg;

  // A deeply nested shape: an error, not a recursion through the whole depth.
  const std::string deep = std::string(20000, '[') + std::string(20000, ']');
  write_raw(path, R"({"w":{"dtype":"U8","shape":)" + deep + R"(,"data_offsets":[0,1]}})", "x");
  msg = error_of(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;

  write_raw(path, R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[1,0]}})", "x");
  msg = error_of(path);
  EXPECT_NE(msg.find("out of range"), std::string::npos) << msg;

  // A valid file after all that still loads, and its bytes are the ones written.
  write_raw(
      path,
      R"({"w":{"dtype":"U8","shape":[2,0],"data_offsets":[0,0]},"v":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}})",
      "abc");
  const SafetensorsFile f = load_safetensors(path);
  ASSERT_EQ(f.tensors.at("v").numel(), 3);
  EXPECT_EQ(f.tensors.at("v").data<uint8_t>()[2], 'c');
  EXPECT_EQ(f.tensors.at("w").numel(), 0);
  fs::remove(path);
}

}  // namespace
}  // namespace sdlora
