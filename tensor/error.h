// Errors: the one exception type of the library, the check macro that raises it, and the string
// helpers messages are built with.
// Library code throws; only main() decides to exit.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace sdlora {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
[[noreturn]] void throw_error(const char* file, int line, const std::string& msg);
}  // namespace detail

// The parts separated by `sep` ("a, b, c"): the one way lists of names enter messages.
template <typename Container>
std::string join(const Container& parts, const std::string& sep = ", ") {
  std::ostringstream os;
  bool first = true;
  for (const auto& p : parts) {
    os << (first ? "" : sep) << p;
    first = false;
  }
  return os.str();
}

}  // namespace sdlora

// SDLORA_CHECK(cond, parts...): throws sdlora::Error "parts... (file:line)" when cond is false.
#define SDLORA_CHECK(cond, ...)                                                                 \
  do {                                                                                          \
    if (!(cond))                                                                                \
      ::sdlora::detail::throw_error(__FILE__, __LINE__, ::sdlora::detail::concat(__VA_ARGS__)); \
  } while (0)

#define SDLORA_THROW(...) \
  ::sdlora::detail::throw_error(__FILE__, __LINE__, ::sdlora::detail::concat(__VA_ARGS__))
