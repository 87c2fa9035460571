// PLplot behind the report's two chart kinds (plot.h). Each figure is its own PLplot stream
// (plstream), so figures never share state; cmap0 holds the background, the ink, a grid grey and
// the series colours, cmap1 the heatmap scale.
#include "report/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "tensor/error.h"

#ifdef SDLORA_WITH_PLPLOT
#include <plplot/plstream.h>
#endif

namespace sdlora::report {

std::string missing_plotting_message(const std::string& what) {
  return what +
         " draws its figures with PLplot, and this build was configured without it: install "
         "Debian's libplplot-dev and plplot-driver-cairo (scripts/deps.sh lists them), then "
         "configure and build again";
}

#ifndef SDLORA_WITH_PLPLOT

bool plotting_built() { return false; }
void require_plotting(const std::string& what) { SDLORA_THROW(missing_plotting_message(what)); }
void draw_line_figure(const std::string&, const std::string&, const std::vector<Panel>&, FigureSize,
                      int) {
  require_plotting("drawing a figure");
}
void draw_heatmaps(const std::string&, const std::string&, const std::vector<Heatmap>&, FigureSize,
                   int) {
  require_plotting("drawing a figure");
}

#else

bool plotting_built() { return true; }

void require_plotting(const std::string& what) {
  // plgDevs fills caller-provided arrays of *n entries.
  std::vector<const char*> menu(512), names(512);
  int n = static_cast<int>(names.size());
  const char** menu_ptr = menu.data();
  const char** names_ptr = names.data();
  plgDevs(&menu_ptr, &names_ptr, &n);
  for (int i = 0; i < n; ++i)
    if (std::string(names_ptr[i]) == "pngcairo") return;
  SDLORA_THROW(what,
               " writes PNG figures through PLplot's pngcairo driver, which is not installed: "
               "install Debian's plplot-driver-cairo");
}

namespace {

constexpr int kInk = 1, kGrid = 2, kFirstSeries = 3;
// Colour-blind-safe series colours (Okabe-Ito), then a few more.
constexpr int kPalette[][3] = {{0, 114, 178}, {213, 94, 0},   {0, 158, 115}, {204, 121, 167},
                               {230, 159, 0}, {86, 180, 233}, {0, 0, 0},     {120, 120, 120},
                               {153, 0, 0},   {0, 90, 50}};
constexpr int kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

// A figure: one stream writing one PNG of exactly size pixels, white background.
class Figure {
 public:
  Figure(const std::string& path, FigureSize size) {
    SDLORA_CHECK(size.width > 0 && size.height > 0, "figure '", path, "': size ", size.width, "x",
                 size.height, " is not positive");
    require_plotting("sdlora report");
    const auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    pls_.sdev("pngcairo");
    pls_.sfnam(path.c_str());
    pls_.spage(0, 0, size.width, size.height, 0, 0);
    pls_.scmap0n(kFirstSeries + kPaletteSize);
    pls_.scolbg(255, 255, 255);
    pls_.scol0(kInk, 0, 0, 0);
    pls_.scol0(kGrid, 215, 215, 215);
    for (int i = 0; i < kPaletteSize; ++i)
      pls_.scol0(kFirstSeries + i, kPalette[i][0], kPalette[i][1], kPalette[i][2]);
    pls_.init();
    pls_.adv(0);
    pls_.col0(kInk);
    path_ = path;
  }
  ~Figure() = default;
  plstream& operator*() { return pls_; }
  plstream* operator->() { return &pls_; }

 private:
  plstream pls_;
  std::string path_;
};

struct Cell {
  double x0, x1, y0, y1;  // normalised device coordinates
};

Cell cell_of(int index, int count, int columns) {
  const int cols = columns > 0 ? std::min(columns, count) : count;
  const int rows = (count + cols - 1) / cols;
  const int r = index / cols, c = index % cols;
  constexpr double kTop = 0.93;  // above: the figure's title
  const double h = kTop / rows, w = 1.0 / cols;
  return {c * w, (c + 1) * w, kTop - (r + 1) * h, kTop - r * h};
}

void figure_title(plstream& p, const std::string& title) {
  p.vpor(0.0, 1.0, 0.0, 1.0);
  p.wind(0.0, 1.0, 0.0, 1.0);
  p.col0(kInk);
  p.schr(0, 1.1);
  p.mtex("t", -1.6, 0.5, 0.5, title.c_str());
  p.schr(0, 1.0);
}

// Runs of consecutive finite points, each drawn as its own polyline.
std::vector<std::pair<std::vector<double>, std::vector<double> > > finite_runs(const Series& s) {
  std::vector<std::pair<std::vector<double>, std::vector<double> > > runs(1);
  for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
    if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
      runs.back().first.push_back(s.x[i]);
      runs.back().second.push_back(s.y[i]);
    } else if (!runs.back().first.empty()) {
      runs.emplace_back();
    }
  }
  return runs;
}

void draw_panel(plstream& p, const Panel& panel, const Cell& cell, double char_scale) {
  bool named = false;
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin;
  double ymin = xmin, ymax = -xmin;
  for (const Series& s : panel.series) {
    named = named || !s.name.empty();
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, s.y[i]);
      ymax = std::max(ymax, s.y[i]);
    }
  }
  for (const auto& [label, y] : panel.hlines) {
    ymin = std::min(ymin, y);
    ymax = std::max(ymax, y);
  }
  if (!std::isfinite(xmin)) xmin = 0, xmax = 1;
  if (!std::isfinite(ymin)) ymin = 0, ymax = 1;
  if (panel.y_from_zero && ymin >= 0) ymin = 0;
  if (panel.y_max > 0) ymax = std::max(panel.y_max, ymax);
  if (ymax - ymin < 1e-12) ymax = ymin + (ymin == 0 ? 1.0 : std::fabs(ymin) * 0.1);
  const double ypad = panel.y_max > 0 && ymax <= panel.y_max ? 0.0 : 0.08 * (ymax - ymin);
  const double xpad = panel.integer_x ? 0.3 : 0.0;
  if (xmax - xmin < 1e-12) xmin -= 0.5, xmax += 0.5;

  const double w = cell.x1 - cell.x0, h = cell.y1 - cell.y0;
  const double legend_w = named ? 0.30 : 0.0;
  const double px0 = cell.x0 + 0.13 * w, px1 = cell.x1 - (0.04 + legend_w) * w;
  const double py0 = cell.y0 + 0.16 * h, py1 = cell.y1 - 0.12 * h;
  p.schr(0, char_scale);
  p.vpor(px0, px1, py0, py1);
  p.wind(xmin - xpad, xmax + xpad, ymin, ymax + ypad);
  const double xtick = panel.integer_x && xmax - xmin <= 12 ? 1.0 : 0.0;
  p.col0(kGrid);
  p.width(0.5);
  p.box("g", xtick, 0, "g", 0.0, 0);
  p.col0(kInk);
  p.width(1.0);
  p.box("bcnst", xtick, panel.integer_x ? 1 : 0, "bcnstv", 0.0, 0);
  p.lab(panel.xlabel.c_str(), panel.ylabel.c_str(), panel.title.c_str());

  for (const auto& [label, y] : panel.hlines) {
    const double xs[2] = {xmin - xpad, xmax + xpad}, ys[2] = {y, y};
    p.col0(kInk);
    p.lsty(3);
    p.line(2, xs, ys);
    p.lsty(1);
    p.ptex(xmin - xpad + 0.02 * (xmax - xmin + 2 * xpad), y + 0.015 * (ymax - ymin), 1.0, 0.0, 0.0,
           label.c_str());
  }
  for (size_t k = 0; k < panel.series.size(); ++k) {
    const Series& s = panel.series[k];
    p.col0(kFirstSeries + static_cast<int>(k % kPaletteSize));
    p.width(2.0);
    p.lsty(s.dashed ? 2 : 1);
    for (auto& [xs, ys] : finite_runs(s)) {
      if (xs.empty()) continue;
      if (xs.size() > 1) p.line(static_cast<PLINT>(xs.size()), xs.data(), ys.data());
      if (xs.size() <= 16) p.poin(static_cast<PLINT>(xs.size()), xs.data(), ys.data(), 17);
    }
    p.lsty(1);
  }
  p.width(1.0);

  if (named) {  // the legend, to the right of the plot area
    p.vpor(px1 + 0.02 * w, cell.x1 - 0.01 * w, py0, py1);
    p.wind(0.0, 1.0, 0.0, 1.0);
    const double step = std::min(0.1, 1.0 / static_cast<double>(panel.series.size() + 1));
    for (size_t k = 0; k < panel.series.size(); ++k) {
      const Series& s = panel.series[k];
      const double y = 1.0 - step * (static_cast<double>(k) + 0.5);
      const double xs[2] = {0.0, 0.16}, ys[2] = {y, y};
      p.col0(kFirstSeries + static_cast<int>(k % kPaletteSize));
      p.width(2.0);
      p.lsty(s.dashed ? 2 : 1);
      p.line(2, xs, ys);
      p.lsty(1);
      p.width(1.0);
      p.col0(kInk);
      p.ptex(0.2, y, 1.0, 0.0, 0.0, s.name.c_str());
    }
  }
  p.schr(0, 1.0);
}

void draw_heatmap(plstream& p, const Heatmap& m, const Cell& cell, double char_scale) {
  const int rows = static_cast<int>(m.values.size());
  int cols = 0;
  for (const auto& r : m.values) cols = std::max(cols, static_cast<int>(r.size()));
  if (rows == 0 || cols == 0) return;
  const double w = cell.x1 - cell.x0, h = cell.y1 - cell.y0;
  p.schr(0, char_scale);
  p.vpor(cell.x0 + 0.18 * w, cell.x1 - 0.05 * w, cell.y0 + 0.2 * h, cell.y1 - 0.12 * h);
  // Row i is drawn at y = rows - 1 - i, so row 0 is on top as in a printed matrix.
  p.wind(-0.5, cols - 0.5, -0.5, rows - 0.5);
  const PLFLT pos[2] = {0.0, 1.0}, r[2] = {1.0, 0.03}, g[2] = {1.0, 0.27}, b[2] = {0.85, 0.58};
  p.scmap1l(true, 2, pos, r, g, b, nullptr);
  const double span = m.hi > m.lo ? m.hi - m.lo : 1.0;
  const double text_scale = std::min(1.0, 7.0 / std::max(rows, cols)) * char_scale;
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < static_cast<int>(m.values[i].size()); ++j) {
      const double v = m.values[i][j];
      if (!std::isfinite(v)) continue;
      const double frac = std::clamp((v - m.lo) / span, 0.0, 1.0);
      const double y = rows - 1 - i;
      const PLFLT xs[4] = {j - 0.5, j + 0.5, j + 0.5, j - 0.5};
      const PLFLT ys[4] = {y - 0.5, y - 0.5, y + 0.5, y + 0.5};
      p.col1(frac);
      p.fill(4, xs, ys);
      char text[32];
      std::snprintf(text, sizeof text, "%.1f", v);
      p.col0(frac > 0.55 ? 0 : kInk);  // white on dark cells
      p.schr(0, text_scale);
      p.ptex(j, y - 0.15, 1.0, 0.0, 0.5, text);
      p.schr(0, char_scale);
    }
  p.col0(kInk);
  p.box("bc", 0.0, 0, "bc", 0.0, 0);
  for (int j = 0; j < cols && j < static_cast<int>(m.column_labels.size()); ++j)
    p.mtex("b", 1.5, (j + 0.5) / cols, 0.5, m.column_labels[j].c_str());
  for (int i = 0; i < rows && i < static_cast<int>(m.row_labels.size()); ++i)
    p.mtex("l", 1.0, (rows - i - 0.5) / rows, 1.0, m.row_labels[i].c_str());
  p.mtex("b", 3.0, 0.5, 0.5, m.xlabel.c_str());
  p.mtex("l", 3.2, 0.5, 0.5, m.ylabel.c_str());
  p.mtex("t", 1.2, 0.5, 0.5, m.title.c_str());
  p.schr(0, 1.0);
}

double char_scale_for(int count, int columns) {
  const int cols = columns > 0 ? std::min(columns, count) : count;
  const int rows = (count + cols - 1) / cols;
  return std::max(rows, cols) > 1 ? 0.8 : 1.0;
}

}  // namespace

void draw_line_figure(const std::string& path, const std::string& title,
                      const std::vector<Panel>& panels, FigureSize size, int columns) {
  SDLORA_CHECK(!panels.empty(), "figure '", path, "': no panels");
  Figure fig(path, size);
  figure_title(*fig, title);
  const int n = static_cast<int>(panels.size());
  for (int i = 0; i < n; ++i)
    draw_panel(*fig, panels[i], cell_of(i, n, columns), char_scale_for(n, columns));
}

void draw_heatmaps(const std::string& path, const std::string& title,
                   const std::vector<Heatmap>& maps, FigureSize size, int columns) {
  SDLORA_CHECK(!maps.empty(), "figure '", path, "': no heatmaps");
  Figure fig(path, size);
  figure_title(*fig, title);
  const int n = static_cast<int>(maps.size());
  for (int i = 0; i < n; ++i)
    draw_heatmap(*fig, maps[i], cell_of(i, n, columns), char_scale_for(n, columns));
}

#endif  // SDLORA_WITH_PLPLOT

}  // namespace sdlora::report
