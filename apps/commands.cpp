// Helpers shared by the subcommands.
#include "apps/commands.h"

#include <filesystem>
#include <fstream>

#include "tensor/error.h"

namespace sdlora::apps {

void require_input_file(const std::string& flag, const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  SDLORA_CHECK(std::filesystem::exists(status), flag, ": cannot read '", path, "': no such file");
  SDLORA_CHECK(!std::filesystem::is_directory(status), flag, ": '", path,
               "' is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  SDLORA_CHECK(in.good(), flag, ": cannot open '", path, "' for reading");
}

}  // namespace sdlora::apps
