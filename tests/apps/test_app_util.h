// Helpers for the app tests: temporary files, running the sdlora binary, and tiny models.
#pragma once

#include <string>

#include "tests/common/tiny_vit.h"  // tiny_vit_config

namespace sdlora::test {

// A path in the temporary folder, unique to this process; removed by the destructor.
class TempFile {
 public:
  explicit TempFile(const std::string& name);
  ~TempFile();
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `sdlora <args>` (the binary the build produced) through the shell; `output` gets stdout,
// and stderr too unless stdout_only.
RunResult run_sdlora(const std::string& args, bool stdout_only = false);

}  // namespace sdlora::test
