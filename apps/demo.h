// The demo (README's main job): SD-LoRA, SD-LoRA-RR, SD-LoRA-KD, sequential LoRA and the
// linear-probe baseline on Split Fashion-MNIST (5 tasks of 2 classes, class order from seed 1993)
// from the small glyph-pretrained ViT in models/, each into DIR/<method>/, then one comparison
// table. configs/demo-fashion-mnist.json holds the same config as demo_config().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cl/config.h"
#include "cl/multi_seed.h"
#include "cl/task_loop.h"

namespace sdlora::apps {

// The demo's config (method sdlora); the other methods override `method`.
cl::Config demo_config();
const std::vector<std::string>& demo_methods();

// The first existing file among: `path` as given, then relative to the source tree this binary
// was built from (for the committed backbone when run from another folder). Returns `path`
// unchanged when neither exists, so the error names what was asked for.
std::string locate_project_file(const std::string& path);

struct DemoRun {
  std::string method;
  cl::RunResult result;       // the (first seed's) run
  cl::MultiSeedResult seeds;  // every seed's, when the demo ran several
};
// The comparison table (method, Acc, AAA, forgetting, stored parameters, seconds; mean +- std
// over the seeds when there were several), then SD-LoRA's accuracy matrix, magnitudes and the
// KD decisions (of the first seed).
std::string demo_report(const std::vector<DemoRun>& runs);

}  // namespace sdlora::apps
