// Shared pieces of the libFuzzer harnesses: a per-process scratch folder (most parsers read
// files), and the check that turns a broken invariant into a crash libFuzzer records.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace sdlora::fuzz {

// A folder only this process uses, created once (under TMPDIR, default /tmp).
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    const std::filesystem::path p = std::filesystem::path(tmp && *tmp ? tmp : "/tmp") /
                                    ("sdlora-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(p);
    return p.string();
  }();
  return dir;
}

// scratch_dir()/rel, holding exactly the given bytes.
inline std::string write_scratch(const std::string& rel, const uint8_t* data, size_t size) {
  const std::filesystem::path p = std::filesystem::path(scratch_dir()) / rel;
  std::filesystem::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return p.string();
}
inline std::string write_scratch(const std::string& rel, const std::string& text) {
  return write_scratch(rel, reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

// An invariant every accepted input must keep; a broken one aborts (a finding).
#define FUZZ_REQUIRE(cond, what)                                                        \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "invariant broken: %s (%s:%d)\n", what, __FILE__, __LINE__); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

// Reads every byte of a buffer so that ASan sees any part of it that is not really there.
inline uint64_t touch(const void* p, size_t n) {
  const auto* b = static_cast<const volatile uint8_t*>(p);
  uint64_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum += b[i];
  return sum;
}

}  // namespace sdlora::fuzz
