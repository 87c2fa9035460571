// Temporary files, the binary runner and the tiny model configuration of the app tests.
#include "tests/apps/test_app_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>

namespace sdlora::test {

TempFile::TempFile(const std::string& name)
    : path_((std::filesystem::temp_directory_path() /
             ("sdlora_apps_" + std::to_string(::getpid()) + "_" + name))
                .string()) {
  std::filesystem::remove(path_);
}

TempFile::~TempFile() {
  std::error_code ec;
  std::filesystem::remove(path_, ec);
}

RunResult run_sdlora(const std::string& args, bool stdout_only) {
  const std::string command =
      std::string("'") + SDLORA_BIN + "' " + args + (stdout_only ? " 2>/dev/null" : " 2>&1");
  RunResult r;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

ViTConfig tiny_vit_config(int64_t num_classes) {
  ViTConfig c;
  c.image_size = 8;
  c.patch_size = 4;
  c.in_channels = 3;
  c.embed_dim = 16;
  c.depth = 2;
  c.num_heads = 2;
  c.mlp_ratio = 2.0;
  c.num_classes = num_classes;
  return c;
}

}  // namespace sdlora::test
