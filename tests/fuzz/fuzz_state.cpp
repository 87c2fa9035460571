// state.json of a run folder, read as `--resume` reads it against the config it was written
// with. A state that loads is written back to the same JSON and loads again.
#include <cstddef>
#include <cstdint>

#include "cl/config.h"
#include "cl/run_dir.h"
#include "tensor/error.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sdlora;
  static const cl::Config config = [] {
    cl::Config c;
    c.dataset = "fashion-mnist";
    c.init_cls = 2;
    c.increment = 2;
    return c;
  }();
  fuzz::write_scratch("run/state.json", data, size);
  const std::string run = fuzz::scratch_dir() + "/run";
  try {
    const cl::RunState s = cl::load_run_state(run, config);
    const std::string once = cl::run_state_json(s);
    fuzz::write_scratch("run/state.json", once);
    const cl::RunState again = cl::load_run_state(run, config);
    FUZZ_REQUIRE(cl::run_state_json(again) == once, "a loaded state does not reload to itself");
  } catch (const Error&) {
  }
  return 0;
}
