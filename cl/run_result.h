// What a run produced: one record per task (statistics, the learner's end-of-task report) and
// the accuracy matrix, with the writers of metrics.json, metrics.csv and the terminal table, and
// the per-task JSON that state.json (run_dir.h) stores.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "cl/config.h"
#include "cl/learner.h"
#include "cl/metrics.h"

namespace sdlora::cl {

// What one task produced.
struct TaskRecord {
  int64_t task = 0;
  int64_t class_begin = 0, class_end = 0;     // remapped labels [begin, end)
  int64_t train_images = 0, test_images = 0;  // test: every seen class
  double seconds = 0.0;                       // wall time of the task (training and evaluation)
  double train_seconds = 0.0;
  double images_per_s = 0.0;     // training images per second
  int64_t peak_bytes = 0;        // peak device memory during the task
  int64_t params_trainable = 0;  // learner + classifier parameters trained in the task
  int64_t params_stored = 0;     // learner + classifier values kept after the task
  double final_loss = 0.0;       // mean loss of the last epoch
  TaskEnd end;                   // rank, KD decision, magnitudes
};

struct RunResult {
  Config config;
  std::vector<int64_t> class_order;  // original class ids in order
  AccuracyMatrix matrix;
  std::vector<TaskRecord> tasks;
  double seconds = 0.0;  // sum of the tasks' wall times

  // metrics.json's content: method, mode, tasks, acc_per_task, acc_final, aaa, forgetting,
  // acc_matrix, seconds, kd, ranks, params_trainable, params_stored, and per-task statistics.
  std::string metrics_json() const;
  // metrics.csv: one row per task (accuracies, R[i][j] columns, statistics).
  std::string metrics_csv() const;
  // The accuracy matrix as a text table for a terminal.
  std::string table() const;
};

// One task's record as JSON (metrics.json's per_task entries and state.json's tasks) and back;
// reading throws on a missing or mistyped field (the caller names the file).
nlohmann::json record_json(const TaskRecord& r);
TaskRecord record_from_json(const nlohmann::json& j);

}  // namespace sdlora::cl
