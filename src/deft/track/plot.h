// A small SVG chart library for reports and the dashboard: plain SVG 1.1 with
// presentation attributes (no CSS classes to collide when several charts share an
// HTML page, no scripts, no external references), readable at 720 px wide.
//
//   svg::XYChart c;
//   c.title = "Loss";
//   c.series.push_back({.name = "train", .x = {1, 2, 3}, .y = {0.9, 0.5, 0.4}});
//   c.series.push_back({.name = "validation", .x = {1, 2, 3}, .y = {0.8, 0.6, 0.55}, .dashed = true});
//   std::string s = svg::xy_chart(c);           // an <svg> element, embeddable in HTML
//   svg::svg_to_png(s, "loss.png", 1440);       // librsvg + cairo
//
// Charts: lines and scatter (xy_chart: series with lines and/or markers; a scatter with
// per-point classes is one series per class), horizontal bars, heatmaps with counts in
// the cells, parallel coordinates with a colour bar, and grids of embedded PNG images.
// Every text that comes from data is XML-escaped here; callers pass plain text.
// Non-finite values are skipped. A chart with nothing to draw says "no data".
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace deft::track::svg {

// &, <, >, " and ' as entities; control characters other than tab/newline dropped
// (XML 1.0 cannot hold them); invalid UTF-8 bytes replaced by U+FFFD.
std::string escape(const std::string& text);
std::string base64(const std::string& bytes);

// "Nice" tick positions (steps of 1, 2 or 5 x 10^k) covering [lo, hi], about `target` of
// them; the first is <= lo and the last >= hi. lo == hi gives a range around the value.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);
// Log axis ticks: powers of ten in [lo, hi] (lo > 0), with 2 and 5 x 10^k when the range
// spans under two decades; widened to include at least two ticks.
std::vector<double> log_ticks(double lo, double hi);
// A tick label: the shortest of %g-style forms that tells neighbouring ticks apart.
std::string format_tick(double v, double step);
// A value for tables and tooltips: 4 significant digits, no trailing zeros.
std::string format_value(double v);

// A categorical palette (Tableau 10; colour-blind distinguishable in order) and a
// sequential colour map (viridis) for t in [0, 1].
const std::string& palette(size_t i);
std::string viridis(double t);

enum class Marker { None, Circle, Square, Triangle, Diamond, Cross };

struct Series {
  std::string name;             // legend label; "" keeps it out of the legend
  std::vector<double> x, y;
  std::string color;            // CSS colour; "" = palette(index)
  bool line = true;
  bool step = false;            // a step line (best so far): horizontal, then vertical
  bool dashed = false;
  Marker marker = Marker::None;
  double width = 1.8;           // line width
  double opacity = 1;
  double marker_size = 3.5;
  std::vector<std::string> tips;  // per-point hover text (<title>), optional
  std::string css_class;        // class attribute of the series' group (tests, styling)
};

struct XYChart {
  std::string title, subtitle;
  std::string x_label, y_label;
  bool log_y = false;           // values <= 0 are skipped on a log axis
  bool integer_x = false;       // ticks at whole numbers only (epochs, trials)
  bool legend = true;
  std::vector<Series> series;
  int width = 720, height = 380;
};
std::string xy_chart(const XYChart& chart);

struct BarChart {                // horizontal bars, in the given order, top to bottom
  std::string title, subtitle, x_label;
  std::vector<std::string> labels;
  std::vector<double> values;
  std::vector<std::string> value_text;  // shown at the bar's end; default format_value
  std::string color = "#4e79a7";
  int width = 720;               // height follows the bar count
};
std::string bar_chart(const BarChart& chart);

struct Heatmap {                 // e.g. a confusion matrix: rows true, columns predicted
  std::string title, subtitle, x_label, y_label;
  std::vector<std::string> row_labels, col_labels;
  std::vector<std::vector<double>> shade;     // 0..1 per cell: the colour's strength
  std::vector<std::vector<std::string>> text;  // the cell's text (counts)
  std::vector<std::vector<bool>> highlight;    // optional: cells drawn in the accent colour (diagonal)
  int cell = 0;                  // cell size in px; 0 = from the size
};
std::string heatmap(const Heatmap& chart);

struct ParallelAxis {
  std::string name;
  std::vector<std::string> categories;  // non-empty: a categorical axis, values are indices
  double low = 0, high = 0;             // numeric axes: the range; from the data when low == high
  bool log = false;
  std::vector<double> values;           // one per line; NaN = the line has no value here
};
struct ParallelChart {
  std::string title, subtitle;
  std::vector<ParallelAxis> axes;
  std::vector<double> color_values;     // one per line: its colour on the colour bar
  std::string color_label;              // the colour bar's title
  bool reverse_colors = false;          // true: low values bright (minimised objectives)
  std::vector<std::string> tips;        // per-line hover text (optional)
  int width = 900, height = 420;
};
std::string parallel_coordinates(const ParallelChart& chart);

struct GridImage {
  std::string png;      // PNG file bytes
  int width = 0, height = 0;  // pixels of the PNG
  std::string caption;  // one line under the image
  std::string caption2; // a second line (optional)
  std::string tip;      // hover text
};
std::string image_grid(const std::string& title, const std::vector<GridImage>& images, int columns = 6,
                       int cell = 96);

// A chart that only says something (no data, needs two objectives, ...).
std::string message_chart(const std::string& title, const std::string& message, int width = 720, int height = 120);
// Charts side by side (nested <svg> elements), one chart wide when `columns` is 1.
std::string arrange(const std::vector<std::string>& charts, int columns);

// PNG bytes of 8-bit pixels, height x width x channels (1 gray, 3 RGB, 4 RGBA), row-major.
std::string encode_png(const uint8_t* hwc, int height, int width, int channels);
// Width and height of an SVG as librsvg reads it; InputError with librsvg's message when
// it does not parse.
std::pair<double, double> svg_size(const std::string& svg);
// Rasterises with librsvg + cairo to a PNG `width` pixels wide (0: the SVG's own
// width), on white, written atomically. InputError when the SVG does not parse.
void svg_to_png(const std::string& svg, const std::string& path, int width = 0);

}  // namespace deft::track::svg
