// The drawing layer of the report: line charts (one or more panels) and annotated heatmaps,
// written as PNG files of a stated pixel size through PLplot's cairo driver (pngcairo). Built
// without PLplot, every drawing function throws the message of require_plotting().
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sdlora::report {

// Whether this build draws figures (PLplot found at configure time).
bool plotting_built();
// Throws, naming the Debian packages, unless this build has PLplot and its pngcairo driver is
// installed; `what` names the command for the message ("sdlora report").
void require_plotting(const std::string& what);
// The message require_plotting throws in a build without PLplot.
std::string missing_plotting_message(const std::string& what);

// One line of a chart; NaN y values leave gaps.
struct Series {
  std::string name;
  std::vector<double> x, y;
  bool dashed = false;
};

struct Panel {
  std::string title, xlabel, ylabel;
  std::vector<Series> series;
  std::vector<std::pair<std::string, double>> hlines;  // labelled horizontal reference lines
  bool integer_x = true;                               // ticks at whole numbers (tasks)
  bool y_from_zero = true;
  double y_max = 0.0;  // > 0: fixed upper limit (percentages: 100)
};

struct FigureSize {
  int width = 0, height = 0;  // pixels
};

// Panels side by side (columns) or stacked, with one legend per panel when it has named series.
void draw_line_figure(const std::string& path, const std::string& title,
                      const std::vector<Panel>& panels, FigureSize size, int columns = 0);

// A matrix of values as coloured cells with the value written in each; NaN cells stay empty.
struct Heatmap {
  std::string title, xlabel, ylabel;
  std::vector<std::vector<double>> values;  // rows
  std::vector<std::string> row_labels, column_labels;
  double lo = 0.0, hi = 100.0;  // colour scale
};
void draw_heatmaps(const std::string& path, const std::string& title,
                   const std::vector<Heatmap>& maps, FigureSize size, int columns = 0);

}  // namespace sdlora::report
