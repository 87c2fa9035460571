// Accuracy figures (figures.h): the accuracy after each task per run, and the accuracy matrices.
#include <cmath>
#include <filesystem>
#include <limits>

#include "report/figures.h"

namespace sdlora::report {

FigureFile figure_accuracy(const std::vector<RunSummary>& runs, const std::string& out_dir) {
  FigureFile f{
      "accuracy.png", "Accuracy on every seen class after each task, per method", {1000, 560}};
  Panel acc{"", "after task", "accuracy (%)", {}, {}, true, true, 100.0};
  for (const RunSummary& r : runs) {
    Series s{r.label, {}, {}};
    for (const TaskSummary& t : r.tasks) {
      s.x.push_back(static_cast<double>(t.task));
      s.y.push_back(t.accuracy);
    }
    acc.series.push_back(std::move(s));
  }
  draw_line_figure((std::filesystem::path(out_dir) / f.file).string(),
                   "Accuracy after each task (seen classes)", {acc}, f.size);
  return f;
}

FigureFile figure_accuracy_matrix(const std::vector<RunSummary>& runs, const std::string& out_dir) {
  const int n = static_cast<int>(runs.size());
  const int columns = n <= 3 ? n : 3;
  const int rows = (n + columns - 1) / columns;
  FigureFile f{
      "accuracy_matrix.png",
      "Accuracy matrix R[i][j] (%): row i after training task i, column j task j's classes",
      {420 * columns, 60 + 400 * rows}};
  std::vector<Heatmap> maps;
  for (const RunSummary& r : runs) {
    Heatmap m;
    m.title = r.label;
    m.xlabel = "task j's classes";
    m.ylabel = "after task i";
    const size_t T = r.acc_matrix.size();
    for (size_t i = 0; i < T; ++i) {
      std::vector<double> row(T, std::numeric_limits<double>::quiet_NaN());
      for (size_t j = 0; j < r.acc_matrix[i].size() && j < T; ++j) row[j] = r.acc_matrix[i][j];
      m.values.push_back(std::move(row));
      m.row_labels.push_back("T" + std::to_string(i));
      m.column_labels.push_back("T" + std::to_string(i));
    }
    maps.push_back(std::move(m));
  }
  draw_heatmaps((std::filesystem::path(out_dir) / f.file).string(), "Accuracy matrix (%)", maps,
                f.size, columns);
  return f;
}

}  // namespace sdlora::report
