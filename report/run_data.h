// What the report reads from run folders: metrics.json's per-run and per-task fields (fields it
// does not use are ignored, so newer metrics files stay readable), and the run folders named by
// --run, --runs or a demo folder (one sub-folder per method).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sdlora::report {

struct TaskSummary {
  int64_t task = 0;
  double accuracy = 0.0;  // over every seen test image after the task, percent
  double seconds = 0.0, train_seconds = 0.0, images_per_s = 0.0;
  int64_t peak_bytes = 0, params_trainable = 0, params_stored = 0, rank = 0;
  std::vector<double> magnitudes;  // alpha_k after the task (SD-LoRA family; empty otherwise)
  bool kd_checked = false, kd_absorbed = false;
  double kd_tau = 0.0;
  std::vector<double> kd_residuals;  // per projection
};

struct RunSummary {
  std::string dir, method, mode, dataset;
  int64_t num_tasks = 0;
  double acc_final = 0.0, aaa = 0.0, forgetting = 0.0;
  std::vector<std::vector<double>> acc_matrix;  // row i: R[i][0..i], percent
  std::vector<TaskSummary> tasks;

  // The label used on figures: the method, or the folder's name when two runs share a method.
  std::string label;
};

// Reads DIR/metrics.json; throws naming the file and the missing or malformed key.
RunSummary read_run(const std::string& dir);

// Whether DIR holds a run's metrics.json.
bool is_run_folder(const std::string& dir);

// The run folders of `inputs`: each is a run folder, or a folder whose sub-folders are run
// folders (a demo folder: the methods in the demo's order, then the others by name). Throws
// naming an input that is neither.
std::vector<std::string> expand_run_folders(const std::vector<std::string>& inputs);

// read_run of every folder, with labels made unique.
std::vector<RunSummary> read_runs(const std::vector<std::string>& dirs);

// Whether the method keeps SD-LoRA components (sdlora, sdlora-rr, sdlora-kd).
bool is_sdlora_family(const std::string& method);

}  // namespace sdlora::report
