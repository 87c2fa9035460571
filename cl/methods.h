// The registry of continual-learning methods: one table that config validation, the learner
// factory (learners.cpp), the demo and the reports read, so adding a method is one entry here
// and one learner class.
#pragma once

#include <string>
#include <vector>

namespace sdlora::cl {

struct MethodInfo {
  std::string name;     // the config's `method`
  std::string summary;  // one line for help and errors
  bool adapters;        // trains SD-LoRA adapters (has a mode, merges, exports adapters)
  bool sdlora_family;   // SD-LoRA's decoupled components (magnitudes, directions, KD analyses)
};

// In the order the demo and the reports show them.
const std::vector<MethodInfo>& methods();
std::vector<std::string> method_names();
// The entry of `name`; throws listing every method when there is none.
const MethodInfo& method_info(const std::string& name);

}  // namespace sdlora::cl
