// The run folder: config.json, log.txt, metrics.json, metrics.csv, state.json (the progress a
// resume reads) and checkpoints/task_{t}.safetensors after every task (the learner's adapters in
// nn/sdlora.h's naming, head.weight and head.bias, and the optimizer's state as optim.*). Every
// file is written to a temporary name and renamed into place, so an interrupted run leaves the
// last finished task complete and loses at most the task in progress.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "cl/task_loop.h"
#include "tensor/random.h"

namespace sdlora::cl {

// Appends one line (a newline is added) to path.
void append_line(const std::string& path, const std::string& line);

std::string checkpoint_path(const std::string& run_dir, int64_t task);

// The progress a resume needs: the results so far and the generator's position after the last
// finished task.
struct RunState {
  RunResult result;
  uint64_t generator_offset = 0;
};
std::string run_state_json(const RunState& state);
// Reads state.json of run_dir; throws naming the file when it is missing or malformed.
RunState load_run_state(const std::string& run_dir, const Config& config);
// Throws naming the first key whose value differs between the run's config and `config`, except
// keys that do not change results (threads, num_workers, device, cache_mb, log_every, prefix).
void check_resume_config(const Config& saved, const Config& config);

}  // namespace sdlora::cl
