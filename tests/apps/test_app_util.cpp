// The binary runner of the app tests.
#include "tests/apps/test_app_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>

namespace sdlora::test {

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

}  // namespace sdlora::test
