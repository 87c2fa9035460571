// The method registry (methods.h).
#include "cl/methods.h"

#include "tensor/error.h"

namespace sdlora::cl {

const std::vector<MethodInfo>& methods() {
  static const std::vector<MethodInfo> kMethods = {
      {"sdlora", "SD-LoRA: decoupled magnitudes and directions, one rank for every task", true,
       true},
      {"sdlora-rr", "SD-LoRA-RR: smaller ranks for later tasks (rank_schedule)", true, true},
      {"sdlora-kd", "SD-LoRA-KD: redundant components absorbed into earlier ones", true, true},
      {"seq-lora", "sequential LoRA fine-tuning: one pair trained on every task in turn", true,
       false},
      {"linear-probe", "a frozen backbone; only the classifier learns", false, false},
  };
  return kMethods;
}

std::vector<std::string> method_names() {
  std::vector<std::string> names;
  for (const MethodInfo& m : methods()) names.push_back(m.name);
  return names;
}

const MethodInfo& method_info(const std::string& name) {
  for (const MethodInfo& m : methods())
    if (m.name == name) return m;
  SDLORA_THROW("unknown method '", name, "' (methods: ", join(method_names()), ")");
}

}  // namespace sdlora::cl
