// Out-of-line helper for the check macros, so each check site stays small.
#include "tensor/error.h"

namespace sdlora::detail {

void throw_error(const char* file, int line, const std::string& msg) {
  std::string where(file);
  const auto slash = where.find_last_of('/');
  if (slash != std::string::npos) where = where.substr(slash + 1);
  throw Error(msg + " (" + where + ":" + std::to_string(line) + ")");
}

}  // namespace sdlora::detail
