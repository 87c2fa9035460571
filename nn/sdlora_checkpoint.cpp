// SD-LoRA checkpoints: the adapter tensors under their documented names (nn/sdlora.h), strict
// loading that validates the whole file before changing anything.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <set>
#include <sstream>
#include <system_error>

#include "nn/safetensors.h"
#include "nn/sdlora.h"
#include "tensor/ops.h"

namespace sdlora {

bool SDLoRA::is_adapter_key(const std::string& name) {
  return name.rfind("sdlora.", 0) == 0 ||
         (name.rfind("blocks.", 0) == 0 && name.find(".attn.qkv.lora_") != std::string::npos);
}

std::map<std::string, Tensor> SDLoRA::state_dict(bool include_current) const {
  const bool cur = include_current && has_current();
  const int64_t K = num_components(), T = K + (cur ? 1 : 0);
  std::map<std::string, Tensor> out;
  for (int64_t p = 0; p < num_projections(); ++p) {
    const SDLoRAProjection& proj = projection(p);
    const std::string name = projection_name(p) + ".";
    std::vector<float> beta;
    for (int64_t k = 0; k < K; ++k) {
      out[name + std::to_string(k) + ".down"] = proj.down(k);
      out[name + std::to_string(k) + ".up"] = proj.up(k);
      beta.push_back(static_cast<float>(proj.beta(k)));
    }
    if (cur) {
      out[name + std::to_string(K) + ".down"] = proj.current_down().data();
      out[name + std::to_string(K) + ".up"] = proj.current_up().data();
      beta.push_back(0.0f);
    }
    out[name + "beta"] = Tensor::from_vector<float>(beta, {T}, device_);
  }
  std::vector<Tensor> alpha;
  for (int64_t k = 0; k < T; ++k)
    alpha.push_back(alphas_[static_cast<size_t>(k)].data().reshape({1}));
  out["sdlora.alpha"] = T > 0 ? cat(alpha, 0) : Tensor::zeros({0}, DType::kFloat32, device_);
  return out;
}

std::map<std::string, std::string> SDLoRA::metadata(bool include_current) const {
  return {{"sdlora_mode", sdlora_mode_name(mode_)},
          {"sdlora_current", include_current && has_current() ? "true" : "false"}};
}

void SDLoRA::load_state_dict(const std::map<std::string, Tensor>& tensors,
                             const std::map<std::string, std::string>& metadata) {
  LoadReport report;
  std::vector<std::string>& problems = report.problems;
  std::vector<std::string>& missing = report.missing;
  std::vector<std::string>& misshaped = report.misshaped;
  std::vector<std::string>& unexpected = report.unexpected;
  auto meta = [&](const std::string& key) {
    auto it = metadata.find(key);
    return it == metadata.end() ? std::string() : it->second;
  };
  const std::string mode_text = meta("sdlora_mode");
  if (mode_text.empty())
    problems.push_back("metadata sdlora_mode is missing");
  else if (mode_text != sdlora_mode_name(mode_))
    problems.push_back("checkpoint mode \"" + mode_text + "\", adapters in mode \"" +
                       sdlora_mode_name(mode_) + "\"");
  const std::string cur_text = meta("sdlora_current");
  if (cur_text != "" && cur_text != "true" && cur_text != "false")
    problems.push_back("metadata sdlora_current is \"" + cur_text + "\", not true or false");
  const bool cur = cur_text == "true";

  // The number of terms comes from sdlora.alpha; without it, from the largest index present.
  // Either is bounded by the tensors the file holds (a component has a down and an up tensor per
  // projection) before anything is enumerated per component.
  const int64_t present = static_cast<int64_t>(tensors.size());
  int64_t T = 0;
  bool beyond = false;
  auto alpha_it = tensors.find("sdlora.alpha");
  if (alpha_it == tensors.end()) {
    missing.push_back("sdlora.alpha");
    for (const auto& [name, t] : tensors) {
      if (!is_adapter_key(name) || name.rfind("sdlora.", 0) == 0) continue;
      // "blocks.<i>.attn.qkv.lora_<q|v>.<k>.<down|up>": the index starts 17 characters after
      // ".attn.qkv.lora_"; a name without one is reported as unexpected below.
      const size_t digits = name.find(".attn.qkv.lora_") + 17;
      if (digits >= name.size() || !std::isdigit(static_cast<unsigned char>(name[digits])))
        continue;
      int64_t k = 0;
      const char* end = name.data() + name.size();
      const auto parsed = std::from_chars(name.data() + digits, end, k);
      if (parsed.ec != std::errc() || k >= present) {
        problems.push_back("tensor " + name + ": component index beyond the " +
                           std::to_string(present) + " tensors of the checkpoint");
        beyond = true;
        continue;
      }
      T = std::max<int64_t>(T, k + 1);
    }
  } else if (alpha_it->second.ndim() != 1) {
    misshaped.push_back("sdlora.alpha (" + shape_str(alpha_it->second.shape()) + ", want [K])");
  } else if (alpha_it->second.size(0) > present) {
    problems.push_back("sdlora.alpha holds " + std::to_string(alpha_it->second.size(0)) +
                       " magnitudes, more than the " + std::to_string(present) +
                       " tensors of the checkpoint");
    beyond = true;
  } else {
    T = alpha_it->second.size(0);
  }
  if (cur && T == 0 && !beyond)
    problems.push_back("sdlora_current is true but there are no components");

  std::set<std::string> expected{"sdlora.alpha"};
  auto check = [&](const std::string& name, const Shape& want, int64_t free_dim) -> int64_t {
    expected.insert(name);
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      missing.push_back(name);
      return -1;
    }
    const Shape& got = it->second.shape();
    bool ok = got.size() == want.size();
    for (size_t i = 0; ok && i < want.size(); ++i)
      ok = static_cast<int64_t>(i) == free_dim ? got[i] > 0 : got[i] == want[i];
    if (!ok) {
      std::string w = "[";  // the free dimension (a rank) shows as r
      for (size_t i = 0; i < want.size(); ++i)
        w += (i ? ", " : "") +
             (static_cast<int64_t>(i) == free_dim ? std::string("r") : std::to_string(want[i]));
      w += "]";
      misshaped.push_back(name + " (checkpoint " + shape_str(got) + ", want " + w + ")");
      return -1;
    }
    return free_dim >= 0 ? got[static_cast<size_t>(free_dim)] : 0;
  };
  for (int64_t p = 0; p < num_projections(); ++p) {
    const SDLoRAProjection& proj = projection(p);
    const std::string name = projection_name(p) + ".";
    for (int64_t k = 0; k < T; ++k) {
      const std::string c = name + std::to_string(k);
      const int64_t rd = check(c + ".down", {0, proj.d_in()}, 0);
      const int64_t ru = check(c + ".up", {proj.d_out(), 0}, 1);
      if (rd > 0 && ru > 0 && rd != ru)
        misshaped.push_back(c + " (down has rank " + std::to_string(rd) + ", up rank " +
                            std::to_string(ru) + ")");
    }
    check(name + "beta", {T}, -1);
  }
  for (const auto& [name, t] : tensors)
    if (is_adapter_key(name) && !expected.count(name)) unexpected.push_back(name);

  report.throw_if_any("SD-LoRA load: the checkpoint", "the adapters");

  auto get = [&](const std::string& name) {
    return cast(tensors.at(name), DType::kFloat32).to(device_).clone();
  };
  const int64_t K = T - (cur ? 1 : 0);
  for (int64_t p = 0; p < num_projections(); ++p) {
    SDLoRAProjection& proj = projection(p);
    const std::string name = projection_name(p) + ".";
    const std::vector<float> beta =
        cast(tensors.at(name + "beta"), DType::kFloat32).to_vector<float>();
    proj.clear();
    for (int64_t k = 0; k < K; ++k)
      proj.add_component(get(name + std::to_string(k) + ".up"),
                         get(name + std::to_string(k) + ".down"), beta[static_cast<size_t>(k)],
                         mode_);
    if (cur)
      proj.set_current(get(name + std::to_string(K) + ".up"),
                       get(name + std::to_string(K) + ".down"));
  }
  const Tensor alpha = T > 0 ? get("sdlora.alpha") : Tensor();
  alphas_.clear();
  for (int64_t k = 0; k < T; ++k) alphas_.emplace_back(slice(alpha, 0, k, k + 1), true);
}

void SDLoRA::save(const std::string& path, bool include_current) const {
  save_safetensors(path, state_dict(include_current), metadata(include_current));
}

void SDLoRA::load(const std::string& path) {
  const SafetensorsFile file = load_safetensors(path, device_);
  try {
    load_state_dict(file.tensors, file.metadata);
  } catch (const Error& e) {
    SDLORA_THROW(path, ": ", e.what());
  }
}

}  // namespace sdlora
