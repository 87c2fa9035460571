// Helpers for the app tests: running the sdlora binary, and tiny models.
#pragma once

#include <string>

#include "tests/common/test_util.h"  // TempFile, TempDir
#include "tests/common/tiny_vit.h"   // tiny_vit_config

namespace sdlora::test {

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `sdlora <args>` (the binary the build produced) through the shell; `output` gets stdout,
// and stderr too unless stdout_only.
RunResult run_sdlora(const std::string& args, bool stdout_only = false);

}  // namespace sdlora::test
