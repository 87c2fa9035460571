// Configs: JSON text plus `--set key=value` overrides (leading lines "set key=value"). A config
// that validates reloads from its own JSON to the same JSON; every failure is a named Error
// (an uncaught standard-library exception is a finding).
#include <cstddef>
#include <cstdint>
#include <sstream>

#include "cl/config.h"
#include "tensor/error.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sdlora;
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::istringstream in(text);
  std::vector<std::string> overrides;
  std::string json, line;
  size_t consumed = 0;
  while (overrides.size() < 8 && std::getline(in, line) && line.rfind("set ", 0) == 0) {
    overrides.push_back(line.substr(4));
    consumed += line.size() + 1;
  }
  json = text.substr(std::min(consumed, text.size()));
  try {
    cl::Config c = cl::config_from_json(json, "fuzz.json");
    for (const std::string& o : overrides) cl::apply_override(c, o);
    c.validate();
    const std::string once = c.to_json();
    const cl::Config again = cl::config_from_json(once, "fuzz.json (reloaded)");
    FUZZ_REQUIRE(again.to_json() == once, "a validated config does not reload to itself");
  } catch (const Error&) {
  }
  return 0;
}
