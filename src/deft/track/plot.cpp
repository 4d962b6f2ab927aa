#include "deft/track/plot.h"

#include <cairo.h>
#include <librsvg/rsvg.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include <fmt/format.h>

#include "deft/tensor/error.h"
#include "deft/tensor/file_io.h"

namespace deft::track::svg {

namespace {

constexpr const char* kFont = "DejaVu Sans, Helvetica, Arial, sans-serif";
constexpr const char* kInk = "#222";
constexpr const char* kMuted = "#666";
constexpr const char* kGrid = "#e6e6e6";
constexpr const char* kAxis = "#888";

// Coordinates with one decimal: sharp enough at any zoom, short files.
std::string n1(double v) {
  if (!std::isfinite(v)) v = 0;
  std::string s = fmt::format("{:.1f}", v);
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  if (s == "-0") s = "0";
  return s;
}

// Approximate width of a text at a font size (DejaVu Sans averages ~0.58 em a character).
double text_width(const std::string& s, double size) {
  size_t chars = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++chars;  // count UTF-8 code points
  return static_cast<double>(chars) * size * 0.58;
}

// Cuts a text to about max_px wide, with an ellipsis (on code-point boundaries).
std::string fit_text(const std::string& s, double size, double max_px) {
  if (text_width(s, size) <= max_px) return s;
  const auto keep = static_cast<size_t>(std::max(1.0, max_px / (size * 0.58) - 1));
  size_t chars = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (chars == keep) break;
      ++chars;
    }
  }
  return s.substr(0, i) + "\xE2\x80\xA6";
}

class Doc {
 public:
  Doc(double w, double h, const std::string& title, const std::string& css_class = "deft-chart") : w_(w), h_(h) {
    out_ = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"{}\" "
        "height=\"{}\" viewBox=\"0 0 {} {}\" font-family=\"{}\" class=\"{}\" role=\"img\">",
        n1(w), n1(h), n1(w), n1(h), kFont, css_class);
    if (!title.empty()) out_ += "<title>" + escape(title) + "</title>";
    out_ += fmt::format("<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#fff\"/>", n1(w), n1(h));
  }
  Doc& raw(const std::string& s) {
    out_ += s;
    return *this;
  }
  // Text from data: escaped here. anchor: start, middle, end.
  void text(double x, double y, const std::string& s, double size = 12, const char* anchor = "start",
            const std::string& fill = kInk, const std::string& extra = "") {
    out_ += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"{}\" fill=\"{}\"{}{}>{}</text>", n1(x),
                        n1(y), n1(size), anchor, fill, extra.empty() ? "" : " ", extra, escape(s));
  }
  void line(double x1, double y1, double x2, double y2, const std::string& stroke, double width = 1,
            const std::string& extra = "") {
    out_ += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\"{}{}/>", n1(x1),
                        n1(y1), n1(x2), n1(y2), stroke, n1(width), extra.empty() ? "" : " ", extra);
  }
  void rect(double x, double y, double w, double h, const std::string& fill, const std::string& extra = "") {
    out_ += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"{}{}/>", n1(x), n1(y),
                        n1(std::max(0.0, w)), n1(std::max(0.0, h)), fill, extra.empty() ? "" : " ", extra);
  }
  // Title and subtitle; returns the y below them.
  double heading(const std::string& title, const std::string& subtitle) {
    double y = 8;
    if (!title.empty()) {
      text(12, 24, fit_text(title, 15, w_ - 24), 15, "start", kInk, "font-weight=\"bold\"");
      y = 30;
    }
    if (!subtitle.empty()) {
      text(12, y + 15, fit_text(subtitle, 12, w_ - 24), 12, "start", kMuted);
      y += 20;
    }
    return y;
  }
  std::string done() { return out_ + "</svg>"; }
  double width() const { return w_; }
  double height() const { return h_; }

 private:
  double w_, h_;
  std::string out_;
};

std::string marker_svg(Marker m, double x, double y, double r, const std::string& color, const std::string& tip) {
  std::string shape;
  const std::string xs = n1(x), ys = n1(y);
  switch (m) {
    case Marker::None:
      return "";
    case Marker::Circle:
      shape = fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\"", xs, ys, n1(r), color);
      break;
    case Marker::Square:
      shape = fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"", n1(x - r), n1(y - r), n1(2 * r),
                          n1(2 * r), color);
      break;
    case Marker::Triangle:
      shape = fmt::format("<path d=\"M{} {}L{} {}L{} {}Z\" fill=\"{}\"", xs, n1(y - 1.2 * r), n1(x + 1.1 * r),
                          n1(y + 0.8 * r), n1(x - 1.1 * r), n1(y + 0.8 * r), color);
      break;
    case Marker::Diamond:
      shape = fmt::format("<path d=\"M{} {}L{} {}L{} {}L{} {}Z\" fill=\"{}\"", xs, n1(y - 1.3 * r), n1(x + 1.3 * r), ys,
                          xs, n1(y + 1.3 * r), n1(x - 1.3 * r), ys, color);
      break;
    case Marker::Cross:
      shape = fmt::format("<path d=\"M{} {}L{} {}M{} {}L{} {}\" stroke=\"{}\" stroke-width=\"2\" fill=\"none\"",
                          n1(x - r), n1(y - r), n1(x + r), n1(y + r), n1(x - r), n1(y + r), n1(x + r), n1(y - r), color);
      break;
  }
  if (tip.empty()) return shape + "/>";
  return shape + "><title>" + escape(tip) + "</title>" + (m == Marker::Circle ? "</circle>" : m == Marker::Square ? "</rect>" : "</path>");
}

// A linear or log10 mapping of a data range onto pixels.
struct Scale {
  double d0 = 0, d1 = 1, p0 = 0, p1 = 1;
  bool log = false;
  double operator()(double v) const {
    const double a = log ? std::log10(d0) : d0, b = log ? std::log10(d1) : d1;
    const double x = log ? std::log10(v) : v;
    return b == a ? 0.5 * (p0 + p1) : p0 + (x - a) / (b - a) * (p1 - p0);
  }
};

std::string attr_class(const std::string& c) { return c.empty() ? "" : " class=\"" + escape(c) + "\""; }

}  // namespace

std::string escape(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 16);
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default:
          if (c >= 0x20 || c == '\t' || c == '\n') out += static_cast<char>(c);
          else if (c == '\r') out += ' ';
      }
      ++i;
      continue;
    }
    size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) ok = (s[i + k] & 0xC0) == 0x80;
    if (ok && len == 3) {  // no overlongs, no surrogates
      const unsigned char c1 = s[i + 1];
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
    }
    if (ok && len == 4) {
      const unsigned char c1 = s[i + 1];
      ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    if (ok) {
      out.append(text, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::string base64(const std::string& bytes) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint32_t{b[i]} << 16) | (uint32_t{b[i + 1]} << 8) | b[i + 2];
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += tbl[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = uint32_t{b[i]} << 16;
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = (uint32_t{b[i]} << 16) | (uint32_t{b[i + 1]} << 8);
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (lo > hi) std::swap(lo, hi);
  if (hi - lo <= 1e-12 * std::max(1.0, std::abs(lo))) {
    const double pad = lo != 0 ? std::abs(lo) * 0.1 : 1.0;
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag;
  const double step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
  const double start = std::floor(lo / step + 1e-9);
  const double end = std::ceil(hi / step - 1e-9);
  std::vector<double> t;
  for (double k = start; k <= end && t.size() < 100; k += 1) {
    double v = k * step;
    if (std::abs(v) < step * 1e-9) v = 0;
    t.push_back(v);
  }
  return t;
}

std::vector<double> log_ticks(double lo, double hi) {
  if (!(lo > 0) || !(hi > 0) || !std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (lo > hi) std::swap(lo, hi);
  int p0 = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
  int p1 = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  if (p1 <= p0) p1 = p0 + 1;
  std::vector<double> t;
  for (int p = p0; p <= p1; ++p) {
    const double base = std::pow(10.0, p);
    t.push_back(base);
    if (p1 - p0 < 2 && p < p1) {
      t.push_back(2 * base);
      t.push_back(5 * base);
    }
  }
  return t;
}

std::string format_tick(double v, double step) {
  if (!std::isfinite(v)) return "";
  if (std::abs(v) < std::abs(step) * 1e-9) v = 0;
  const double a = std::abs(v);
  if (a != 0 && (a >= 1e6 || a < 1e-4)) {
    std::string s = fmt::format("{:.2g}", v);
    return s;
  }
  const double st = std::abs(step) > 0 ? std::abs(step) : (a > 0 ? a : 1);
  const int decimals = std::clamp(static_cast<int>(-std::floor(std::log10(st) + 1e-9)), 0, 8);
  return fmt::format("{:.{}f}", v, decimals);
}

std::string format_value(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "-" : (v > 0 ? "inf" : "-inf");
  if (std::abs(v) >= 1e4 && std::abs(v) < 1e12 && v == std::floor(v)) return fmt::format("{:.0f}", v);
  return fmt::format("{:.4g}", v);
}

const std::string& palette(size_t i) {
  static const std::vector<std::string> p = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                             "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
  return p[i % p.size()];
}

std::string viridis(double t) {
  static const uint8_t stops[11][3] = {{0x44, 0x01, 0x54}, {0x48, 0x24, 0x75}, {0x41, 0x44, 0x87}, {0x35, 0x5f, 0x8d},
                                       {0x2a, 0x78, 0x8e}, {0x21, 0x91, 0x8c}, {0x22, 0xa8, 0x84}, {0x44, 0xbf, 0x70},
                                       {0x7a, 0xd1, 0x51}, {0xbd, 0xdf, 0x26}, {0xfd, 0xe7, 0x25}};
  if (!std::isfinite(t)) t = 0;
  t = std::clamp(t, 0.0, 1.0) * 10;
  const int i = std::min(9, static_cast<int>(t));
  const double f = t - i;
  int c[3];
  for (int k = 0; k < 3; ++k) c[k] = static_cast<int>(std::lround(stops[i][k] + f * (stops[i + 1][k] - stops[i][k])));
  return fmt::format("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]);
}

std::string message_chart(const std::string& title, const std::string& message, int width, int height) {
  Doc d(width, height, title, "deft-chart deft-empty");
  const double y = d.heading(title, "");
  d.text(width / 2.0, (y + height) / 2.0 + 4, fit_text(message, 13, width - 24), 13, "middle", kMuted);
  return d.done();
}

// ---- lines and scatter --------------------------------------------------------------

std::string xy_chart(const XYChart& c) {
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (const Series& s : c.series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || (c.log_y && s.y[i] <= 0)) continue;
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, s.y[i]);
      ymax = std::max(ymax, s.y[i]);
    }
  if (!(xmin <= xmax)) return message_chart(c.title, "no data yet", c.width, 140);

  // legend entries
  std::vector<size_t> legend;
  if (c.legend)
    for (size_t i = 0; i < c.series.size(); ++i)
      if (!c.series[i].name.empty()) legend.push_back(i);
  const size_t max_legend = 18;
  double legend_w = 0;
  for (size_t k = 0; k < std::min(legend.size(), max_legend); ++k)
    legend_w = std::max(legend_w, text_width(c.series[legend[k]].name, 11));
  if (!legend.empty()) legend_w = std::min(240.0, legend_w + 40);

  // y ticks
  std::vector<double> yt = c.log_y ? log_ticks(ymin, ymax) : nice_ticks(ymin, ymax, 6);
  const double ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
  std::vector<std::string> ylabels;
  double ylab_w = 0;
  for (double v : yt) {
    ylabels.push_back(c.log_y ? format_tick(v, v) : format_tick(v, ystep));
    ylab_w = std::max(ylab_w, text_width(ylabels.back(), 11));
  }

  Doc d(c.width, c.height, c.title);
  const double top = d.heading(c.title, c.subtitle) + 14;
  const double left = 14 + ylab_w + 8 + (c.y_label.empty() ? 0 : 18);
  const double right = c.width - 16 - legend_w;
  const double bottom = c.height - 34 - (c.x_label.empty() ? 0 : 16);

  // x domain: the data range, padded a little; ticks inside it
  double x0 = xmin, x1 = xmax;
  if (x1 - x0 <= 0) {
    x0 -= c.integer_x ? 1 : std::max(1e-9, std::abs(x0) * 0.1 + (x0 == 0));
    x1 += c.integer_x ? 1 : std::max(1e-9, std::abs(x1) * 0.1 + (x1 == 0));
  }
  const double xpad = (x1 - x0) * 0.03;
  x0 -= xpad;
  x1 += xpad;
  std::vector<double> xt;
  for (double v : nice_ticks(x0, x1, std::max(2, static_cast<int>((right - left) / 80))))
    if (v >= x0 - 1e-12 && v <= x1 + 1e-12 && (!c.integer_x || v == std::floor(v))) xt.push_back(v);
  if (c.integer_x && xt.size() < 2) {
    xt.clear();
    for (double v = std::ceil(x0); v <= x1; v += 1) xt.push_back(v);
  }
  const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1;
  const Scale sx{x0, x1, left, right, false};
  const Scale sy{yt.front(), yt.back(), bottom, top, c.log_y};

  // grid, axes, ticks
  for (size_t i = 0; i < yt.size(); ++i) {
    const double y = sy(yt[i]);
    d.line(left, y, right, y, kGrid);
    d.text(left - 6, y + 4, ylabels[i], 11, "end", kMuted);
  }
  for (double v : xt) {
    const double x = sx(v);
    d.line(x, top, x, bottom, kGrid);
    d.line(x, bottom, x, bottom + 4, kAxis);
    d.text(x, bottom + 17, format_tick(v, xstep), 11, "middle", kMuted);
  }
  d.line(left, bottom, right, bottom, kAxis);
  d.line(left, top, left, bottom, kAxis);
  if (!c.x_label.empty()) d.text((left + right) / 2, c.height - 10, c.x_label, 12, "middle", kInk);
  if (!c.y_label.empty()) {
    const double cy = (top + bottom) / 2;
    d.text(16, cy, fit_text(c.y_label, 12, bottom - top), 12, "middle", kInk,
           fmt::format("transform=\"rotate(-90 16 {})\"", n1(cy)));
  }

  // series
  for (size_t si = 0; si < c.series.size(); ++si) {
    const Series& s = c.series[si];
    const std::string color = s.color.empty() ? palette(si) : s.color;
    d.raw(fmt::format("<g{}{}>", attr_class(s.css_class),
                      s.opacity < 1 ? fmt::format(" opacity=\"{}\"", fmt::format("{:.2f}", s.opacity)) : ""));
    if (!s.name.empty()) d.raw("<title>" + escape(s.name) + "</title>");
    const size_t n = std::min(s.x.size(), s.y.size());
    auto ok = [&](size_t i) { return std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && (!c.log_y || s.y[i] > 0); };
    if (s.line) {
      std::string path;
      bool pen = false;
      for (size_t i = 0; i < n; ++i) {
        if (!ok(i)) {
          pen = false;
          continue;
        }
        const double px = sx(s.x[i]), py = sy(s.y[i]);
        if (!pen) path += "M" + n1(px) + " " + n1(py);
        else if (s.step) path += "H" + n1(px) + "V" + n1(py);
        else path += "L" + n1(px) + " " + n1(py);
        pen = true;
      }
      if (!path.empty())
        d.raw(fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" stroke-linejoin=\"round\"{}/>",
                          path, color, n1(s.width), s.dashed ? " stroke-dasharray=\"6 4\"" : ""));
    }
    if (s.marker != Marker::None)
      for (size_t i = 0; i < n; ++i)
        if (ok(i)) d.raw(marker_svg(s.marker, sx(s.x[i]), sy(s.y[i]), s.marker_size, color, i < s.tips.size() ? s.tips[i] : ""));
    d.raw("</g>");
  }

  // legend
  if (!legend.empty()) {
    double ly = top + 4;
    const double lx = right + 14;
    for (size_t k = 0; k < legend.size() && k < max_legend; ++k) {
      const Series& s = c.series[legend[k]];
      const std::string color = s.color.empty() ? palette(legend[k]) : s.color;
      if (s.line)
        d.line(lx, ly + 6, lx + 20, ly + 6, color, s.width + 0.4, s.dashed ? "stroke-dasharray=\"5 3\"" : "");
      if (s.marker != Marker::None) d.raw(marker_svg(s.marker, lx + 10, ly + 6, s.marker_size, color, ""));
      d.text(lx + 26, ly + 10, fit_text(s.name, 11, legend_w - 34), 11, "start", kInk);
      ly += 18;
    }
    if (legend.size() > max_legend) d.text(lx, ly + 10, fmt::format("+{} more", legend.size() - max_legend), 11, "start", kMuted);
  }
  return d.done();
}

// ---- horizontal bars ------------------------------------------------------------------

std::string bar_chart(const BarChart& c) {
  const size_t n = std::min(c.labels.size(), c.values.size());
  if (n == 0) return message_chart(c.title, "no data yet", c.width, 140);
  double label_w = 0;
  for (size_t i = 0; i < n; ++i) label_w = std::max(label_w, text_width(c.labels[i], 12));
  label_w = std::min(label_w, c.width * 0.35);
  const double bar_h = 20, gap = 8;
  double vmax = 0;
  for (size_t i = 0; i < n; ++i)
    if (std::isfinite(c.values[i])) vmax = std::max(vmax, c.values[i]);
  if (vmax <= 0) vmax = 1;
  const std::vector<double> ticks = nice_ticks(0, vmax, 5);
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1;

  const double head = (c.title.empty() ? 8 : 30) + (c.subtitle.empty() ? 0 : 20) + 12;
  const double height = head + static_cast<double>(n) * (bar_h + gap) + 34 + (c.x_label.empty() ? 0 : 16);
  Doc d(c.width, height, c.title);
  const double top = d.heading(c.title, c.subtitle) + 12;
  const double left = 16 + label_w + 10;
  const double right = c.width - 70;
  const double bottom = top + static_cast<double>(n) * (bar_h + gap);
  const Scale sx{0, ticks.back(), left, right, false};
  for (double v : ticks) {
    d.line(sx(v), top - 4, sx(v), bottom, kGrid);
    d.text(sx(v), bottom + 16, format_tick(v, step), 11, "middle", kMuted);
  }
  d.line(left, top - 4, left, bottom, kAxis);
  if (!c.x_label.empty()) d.text((left + right) / 2, height - 10, c.x_label, 12, "middle");
  for (size_t i = 0; i < n; ++i) {
    const double y = top + static_cast<double>(i) * (bar_h + gap);
    const double v = std::isfinite(c.values[i]) ? std::max(0.0, c.values[i]) : 0.0;
    const std::string vt = i < c.value_text.size() ? c.value_text[i] : format_value(c.values[i]);
    d.raw("<g class=\"bar\">");
    d.raw("<title>" + escape(c.labels[i] + ": " + vt) + "</title>");
    d.text(left - 8, y + bar_h / 2 + 4, fit_text(c.labels[i], 12, label_w), 12, "end");
    d.rect(left, y, sx(v) - left, bar_h, c.color);
    d.text(sx(v) + 6, y + bar_h / 2 + 4, vt, 11, "start", kMuted);
    d.raw("</g>");
  }
  return d.done();
}

// ---- heatmap ------------------------------------------------------------------------

std::string heatmap(const Heatmap& c) {
  const size_t rows = c.row_labels.size(), cols = c.col_labels.size();
  if (rows == 0 || cols == 0) return message_chart(c.title, "no data yet");
  double row_w = 0, col_w = 0;
  for (auto& s : c.row_labels) row_w = std::max(row_w, text_width(s, 11));
  for (auto& s : c.col_labels) col_w = std::max(col_w, text_width(s, 11));
  row_w = std::min(row_w, 160.0);
  col_w = std::min(col_w, 160.0);
  const double cell = c.cell > 0 ? c.cell : std::clamp(560.0 / static_cast<double>(std::max(rows, cols)), 14.0, 52.0);
  const double head = (c.title.empty() ? 8 : 30) + (c.subtitle.empty() ? 0 : 20) + 10;
  const double left = 14 + (c.y_label.empty() ? 0 : 20) + row_w + 8;
  const double top = head;
  const double grid_w = cell * static_cast<double>(cols), grid_h = cell * static_cast<double>(rows);
  // column labels below, rotated 40 degrees: they need about 0.65 of their width in height
  const double bottom_space = 12 + col_w * 0.7 + 14 + (c.x_label.empty() ? 0 : 20);
  const double width = std::max({left + grid_w + 24, 360.0, text_width(c.subtitle, 12) + 30, text_width(c.title, 15) + 30});
  const double height = top + grid_h + bottom_space;
  Doc d(width, height, c.title);
  d.heading(c.title, c.subtitle);
  const double fs = std::clamp(cell * 0.32, 7.0, 12.0);
  for (size_t r = 0; r < rows; ++r) {
    const double y = top + cell * static_cast<double>(r);
    d.text(left - 6, y + cell / 2 + 4, fit_text(c.row_labels[r], 11, row_w), 11, "end");
    for (size_t k = 0; k < cols; ++k) {
      const double x = left + cell * static_cast<double>(k);
      double t = r < c.shade.size() && k < c.shade[r].size() ? c.shade[r][k] : 0;
      if (!std::isfinite(t)) t = 0;
      t = std::clamp(t, 0.0, 1.0);
      const bool hi = r < c.highlight.size() && k < c.highlight[r].size() && c.highlight[r][k];
      // diagonal (hi): white -> blue; elsewhere white -> orange-red: errors stand out
      const int r0 = 255, g0 = 255, b0 = 255;
      const int r1 = hi ? 0x21 : 0xd9, g1 = hi ? 0x66 : 0x48, b1 = hi ? 0xac : 0x01;
      const double e = t > 0 ? 0.08 + 0.92 * t : 0;
      const std::string fill = fmt::format("#{:02x}{:02x}{:02x}", static_cast<int>(std::lround(r0 + e * (r1 - r0))),
                                           static_cast<int>(std::lround(g0 + e * (g1 - g0))),
                                           static_cast<int>(std::lround(b0 + e * (b1 - b0))));
      const std::string txt = r < c.text.size() && k < c.text[r].size() ? c.text[r][k] : "";
      d.raw("<g class=\"cell\"><title>" +
            escape(c.row_labels[r] + " \xE2\x86\x92 " + c.col_labels[k] + ": " + (txt.empty() ? "0" : txt)) + "</title>");
      d.rect(x, y, cell, cell, fill, "stroke=\"#fff\" stroke-width=\"1\"");
      if (!txt.empty() && cell >= 16)
        d.text(x + cell / 2, y + cell / 2 + fs * 0.35, txt, fs, "middle", e > 0.55 ? "#fff" : kInk);
      d.raw("</g>");
    }
  }
  d.rect(left, top, grid_w, grid_h, "none", "stroke=\"#bbb\" stroke-width=\"1\"");
  for (size_t k = 0; k < cols; ++k) {
    const double x = left + cell * (static_cast<double>(k) + 0.5), y = top + grid_h + 10;
    d.text(x, y, fit_text(c.col_labels[k], 11, col_w), 11, "end", kInk,
           fmt::format("transform=\"rotate(-40 {} {})\"", n1(x), n1(y)));
  }
  if (!c.x_label.empty()) d.text(left + grid_w / 2, height - 8, c.x_label, 12, "middle", kInk, "font-weight=\"bold\"");
  if (!c.y_label.empty()) {
    const double cy = top + grid_h / 2;
    d.text(18, cy, c.y_label, 12, "middle", kInk, fmt::format("font-weight=\"bold\" transform=\"rotate(-90 18 {})\"", n1(cy)));
  }
  return d.done();
}

// ---- parallel coordinates -------------------------------------------------------------

std::string parallel_coordinates(const ParallelChart& c) {
  const size_t na = c.axes.size();
  size_t nl = c.color_values.size();
  for (const auto& a : c.axes) nl = std::max(nl, a.values.size());
  if (na == 0 || nl == 0) return message_chart(c.title, "no data yet", c.width, 140);
  Doc d(c.width, c.height, c.title);
  const double top = d.heading(c.title, c.subtitle) + 34;  // axis names above the axes
  const double bottom = c.height - 28;
  const double left = 70, right = c.width - 150;  // colour bar on the right
  const double gap = na > 1 ? (right - left) / static_cast<double>(na - 1) : 0;
  auto ax_x = [&](size_t i) { return na > 1 ? left + gap * static_cast<double>(i) : (left + right) / 2; };

  // per-axis value -> y
  struct AxisMap {
    Scale s;
    bool cat = false;
    size_t k = 0;
  };
  std::vector<AxisMap> maps(na);
  for (size_t a = 0; a < na; ++a) {
    const ParallelAxis& ax = c.axes[a];
    AxisMap& m = maps[a];
    if (!ax.categories.empty()) {
      m.cat = true;
      m.k = ax.categories.size();
      m.s = Scale{m.k > 1 ? 0.0 : -1.0, m.k > 1 ? static_cast<double>(m.k - 1) : 1.0, bottom, top, false};
      continue;
    }
    double lo = ax.low, hi = ax.high;
    if (!(lo < hi)) {
      lo = INFINITY;
      hi = -INFINITY;
      for (double v : ax.values)
        if (std::isfinite(v) && (!ax.log || v > 0)) {
          lo = std::min(lo, v);
          hi = std::max(hi, v);
        }
      if (!(lo <= hi)) lo = hi = ax.log ? 1 : 0;
      if (lo == hi) {
        const double pad = ax.log ? lo * 0.5 : (lo != 0 ? std::abs(lo) * 0.1 : 1);
        lo -= pad;
        hi += ax.log ? lo : pad;
      }
    }
    m.s = Scale{lo, hi, bottom, top, ax.log && lo > 0};
  }

  // colours
  double cmin = INFINITY, cmax = -INFINITY;
  for (double v : c.color_values)
    if (std::isfinite(v)) {
      cmin = std::min(cmin, v);
      cmax = std::max(cmax, v);
    }
  auto color_t = [&](double v) {
    if (!std::isfinite(v) || !(cmin < cmax)) return 0.5;
    const double t = (v - cmin) / (cmax - cmin);
    return c.reverse_colors ? 1 - t : t;
  };
  // lines, the best (brightest) drawn last so they are on top
  std::vector<size_t> order(nl);
  for (size_t i = 0; i < nl; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const double ca = a < c.color_values.size() ? color_t(c.color_values[a]) : 0;
    const double cb = b < c.color_values.size() ? color_t(c.color_values[b]) : 0;
    return ca < cb;
  });
  d.raw("<g class=\"lines\" fill=\"none\" stroke-width=\"1.6\" stroke-opacity=\"0.75\">");
  for (size_t i : order) {
    std::string path;
    bool pen = false;
    for (size_t a = 0; a < na; ++a) {
      const double v = i < c.axes[a].values.size() ? c.axes[a].values[i] : NAN;
      if (!std::isfinite(v) || (maps[a].s.log && v <= 0)) {
        pen = false;
        continue;
      }
      path += (pen ? "L" : "M") + n1(ax_x(a)) + " " + n1(maps[a].s(v));
      pen = true;
    }
    if (path.empty()) continue;
    const double cv = i < c.color_values.size() ? c.color_values[i] : NAN;
    d.raw(fmt::format("<path d=\"{}\" stroke=\"{}\">", path, viridis(color_t(cv))));
    if (i < c.tips.size()) d.raw("<title>" + escape(c.tips[i]) + "</title>");
    d.raw("</path>");
  }
  d.raw("</g>");

  // axes over the lines
  const double name_w = na > 1 ? std::max(50.0, gap - 6) : 200;
  for (size_t a = 0; a < na; ++a) {
    const ParallelAxis& ax = c.axes[a];
    const double x = ax_x(a);
    d.line(x, top, x, bottom, "#444", 1.2);
    d.text(x, top - 14, fit_text(ax.name, 12, name_w), 12, "middle", kInk, "font-weight=\"bold\"");
    const AxisMap& m = maps[a];
    const std::string halo = "stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\"";
    if (m.cat) {
      for (size_t k = 0; k < m.k; ++k) {
        const double y = m.k > 1 ? m.s(static_cast<double>(k)) : m.s(0);
        d.line(x - 4, y, x, y, "#444");
        d.text(x - 6, y + 4, fit_text(ax.categories[k], 10, 90), 10, "end", kInk, halo);
      }
    } else {
      std::vector<double> t = m.s.log ? log_ticks(m.s.d0, m.s.d1) : nice_ticks(m.s.d0, m.s.d1, 5);
      const double step = t.size() > 1 ? t[1] - t[0] : 1;
      for (double v : t) {
        if (v < m.s.d0 - 1e-12 * std::abs(m.s.d0) || v > m.s.d1 + 1e-12 * std::abs(m.s.d1)) continue;
        const double y = m.s(v);
        d.line(x - 4, y, x, y, "#444");
        d.text(x - 6, y + 4, m.s.log ? format_tick(v, v) : format_tick(v, step), 10, "end", kInk, halo);
      }
    }
  }

  // colour bar
  const double bx = c.width - 70, bw = 14;
  d.text(c.width - 8, top - 14, fit_text(c.color_label, 11, 110), 11, "end", kInk, "font-weight=\"bold\"");
  const int steps = 40;
  for (int k = 0; k < steps; ++k) {
    const double t0 = static_cast<double>(k) / steps;
    const double y = bottom - (bottom - top) * (static_cast<double>(k + 1) / steps);
    // colour at this height: values rise upwards; reverse maps low values to bright
    const double t = c.reverse_colors ? 1 - (t0 + 0.5 / steps) : t0 + 0.5 / steps;
    d.rect(bx, y, bw, (bottom - top) / steps + 0.5, viridis(t));
  }
  d.rect(bx, top, bw, bottom - top, "none", "stroke=\"#888\"");
  if (cmin <= cmax) {
    const std::vector<double> t = nice_ticks(cmin, cmax, 5);
    const double step = t.size() > 1 ? t[1] - t[0] : 1;
    const Scale sc{cmin < cmax ? cmin : cmin - 1, cmin < cmax ? cmax : cmax + 1, bottom, top, false};
    for (double v : t) {
      if (v < sc.d0 - 1e-12 || v > sc.d1 + 1e-12) continue;
      d.line(bx + bw, sc(v), bx + bw + 4, sc(v), "#444");
      d.text(bx + bw + 6, sc(v) + 4, format_tick(v, step), 10, "start", kInk);
    }
  }
  return d.done();
}

// ---- image grid ---------------------------------------------------------------------

std::string image_grid(const std::string& title, const std::vector<GridImage>& images, int columns, int cell) {
  if (images.empty()) return message_chart(title, "no images");
  columns = std::max(1, columns);
  const size_t cols = std::min(images.size(), static_cast<size_t>(columns));
  const size_t rows = (images.size() + cols - 1) / cols;
  const double pad = 12, cap = 30;
  const double cw = cell + pad, ch = cell + cap + pad;
  const double head = title.empty() ? 8 : 40;
  const double width = std::max(pad + cw * static_cast<double>(cols), 240.0), height = head + ch * static_cast<double>(rows);
  Doc d(width, height, title);
  d.heading(title, "");
  for (size_t i = 0; i < images.size(); ++i) {
    const GridImage& im = images[i];
    const double x = pad + cw * static_cast<double>(i % cols), y = head + ch * static_cast<double>(i / cols);
    const double aspect = im.width > 0 && im.height > 0 ? static_cast<double>(im.width) / im.height : 1;
    const double iw = aspect >= 1 ? cell : cell * aspect, ih = aspect >= 1 ? cell / aspect : cell;
    d.raw("<g class=\"image\">");
    if (!im.tip.empty()) d.raw("<title>" + escape(im.tip) + "</title>");
    d.rect(x - 1, y - 1, cell + 2, cell + 2, "#f4f4f4", "stroke=\"#ddd\"");
    d.raw(fmt::format("<image x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" preserveAspectRatio=\"xMidYMid meet\" "
                      "style=\"image-rendering:pixelated\" xlink:href=\"data:image/png;base64,{}\"/>",
                      n1(x + (cell - iw) / 2), n1(y + (cell - ih) / 2), n1(iw), n1(ih), base64(im.png)));
    d.text(x + cell / 2.0, y + cell + 13, fit_text(im.caption, 10, cell + pad - 2), 10, "middle", kInk);
    if (!im.caption2.empty())
      d.text(x + cell / 2.0, y + cell + 25, fit_text(im.caption2, 10, cell + pad - 2), 10, "middle", "#c0392b");
    d.raw("</g>");
  }
  return d.done();
}

// ---- composition --------------------------------------------------------------------

namespace {
double root_attr(const std::string& svg, const char* name) {
  const size_t end = svg.find('>');
  const std::string key = std::string(" ") + name + "=\"";
  const size_t p = svg.find(key);
  if (p == std::string::npos || p > end) return 0;
  return std::atof(svg.c_str() + p + key.size());
}
}  // namespace

std::string arrange(const std::vector<std::string>& charts, int columns) {
  if (charts.empty()) return message_chart("", "no data yet");
  if (charts.size() == 1) return charts[0];
  columns = std::max(1, columns);
  std::vector<double> col_w(static_cast<size_t>(columns), 0), row_h((charts.size() + columns - 1) / columns, 0);
  for (size_t i = 0; i < charts.size(); ++i) {
    col_w[i % columns] = std::max(col_w[i % columns], root_attr(charts[i], "width"));
    row_h[i / columns] = std::max(row_h[i / columns], root_attr(charts[i], "height"));
  }
  double W = 0, H = 0;
  for (double w : col_w) W += w;
  for (double h : row_h) H += h;
  Doc d(W, H, "");
  double y = 0;
  for (size_t r = 0; r < row_h.size(); ++r) {
    double x = 0;
    for (size_t k = 0; k < static_cast<size_t>(columns); ++k) {
      const size_t i = r * columns + k;
      if (i >= charts.size()) break;
      // nest: the chart's root <svg gets a position
      std::string s = charts[i];
      if (s.rfind("<svg ", 0) == 0) s.insert(5, fmt::format("x=\"{}\" y=\"{}\" ", n1(x), n1(y)));
      d.raw(s);
      x += col_w[k];
    }
    y += row_h[r];
  }
  return d.done();
}

// ---- raster -------------------------------------------------------------------------

namespace {

cairo_status_t append_png(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

struct SurfaceFree {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
struct CairoFree {
  void operator()(cairo_t* c) const { cairo_destroy(c); }
};
struct HandleFree {
  void operator()(RsvgHandle* h) const { g_object_unref(h); }
};
using Surface = std::unique_ptr<cairo_surface_t, SurfaceFree>;

std::string surface_png(cairo_surface_t* s) {
  std::string out;
  const cairo_status_t st = cairo_surface_write_to_png_stream(s, append_png, &out);
  DEFT_INTERNAL_CHECK(st == CAIRO_STATUS_SUCCESS, "PNG encoding failed: {}", cairo_status_to_string(st));
  return out;
}

std::unique_ptr<RsvgHandle, HandleFree> load_svg(const std::string& svg) {
  GError* err = nullptr;
  RsvgHandle* h = rsvg_handle_new_from_data(reinterpret_cast<const guint8*>(svg.data()), svg.size(), &err);
  if (!h) {
    const std::string msg = err ? err->message : "unknown error";
    if (err) g_error_free(err);
    fail("SVG does not parse: {}", msg);
  }
  return std::unique_ptr<RsvgHandle, HandleFree>(h);
}

}  // namespace

std::string encode_png(const uint8_t* hwc, int height, int width, int channels) {
  DEFT_CHECK(height > 0 && width > 0 && (channels == 1 || channels == 3 || channels == 4),
             "encode_png: {}x{}x{} is not an image (1, 3 or 4 channels)", height, width, channels);
  Surface s(cairo_image_surface_create(channels == 4 ? CAIRO_FORMAT_ARGB32 : CAIRO_FORMAT_RGB24, width, height));
  DEFT_INTERNAL_CHECK(cairo_surface_status(s.get()) == CAIRO_STATUS_SUCCESS, "encode_png: cannot create a {}x{} surface",
                      width, height);
  cairo_surface_flush(s.get());
  unsigned char* data = cairo_image_surface_get_data(s.get());
  const int stride = cairo_image_surface_get_stride(s.get());
  for (int y = 0; y < height; ++y) {
    auto* row = reinterpret_cast<uint32_t*>(data + static_cast<ptrdiff_t>(y) * stride);
    for (int x = 0; x < width; ++x) {
      const uint8_t* p = hwc + (static_cast<size_t>(y) * width + x) * channels;
      uint32_t r = p[0], g = channels >= 3 ? p[1] : p[0], b = channels >= 3 ? p[2] : p[0], a = channels == 4 ? p[3] : 255;
      if (a != 255) {  // cairo holds premultiplied alpha
        r = r * a / 255;
        g = g * a / 255;
        b = b * a / 255;
      }
      row[x] = (a << 24) | (r << 16) | (g << 8) | b;
    }
  }
  cairo_surface_mark_dirty(s.get());
  return surface_png(s.get());
}

std::pair<double, double> svg_size(const std::string& svg) {
  auto h = load_svg(svg);
  double w = 0, hh = 0;
  if (!rsvg_handle_get_intrinsic_size_in_pixels(h.get(), &w, &hh)) fail("SVG has no size in pixels (no width/height)");
  return {w, hh};
}

#ifdef DEFT_SANITIZED
// LeakSanitizer: fontconfig (under librsvg's text rendering) keeps its font caches for
// the life of the process by design; they are not deft's leaks. In this file because
// every binary that renders a PNG links it.
extern "C" const char* __lsan_default_suppressions() {  // NOLINT: the sanitizer's hook
  return "leak:libfontconfig.so\nleak:libpango\nleak:libharfbuzz\n";
}
#endif

void svg_to_png(const std::string& svg, const std::string& path, int width) {
  auto h = load_svg(svg);
  double w0 = 0, h0 = 0;
  if (!rsvg_handle_get_intrinsic_size_in_pixels(h.get(), &w0, &h0) || w0 <= 0 || h0 <= 0)
    fail("svg_to_png: the SVG has no size in pixels (width/height)");
  const double scale = width > 0 ? width / w0 : 1.0;
  const int W = std::max(1, static_cast<int>(std::lround(w0 * scale))), H = std::max(1, static_cast<int>(std::lround(h0 * scale)));
  Surface s(cairo_image_surface_create(CAIRO_FORMAT_ARGB32, W, H));
  DEFT_INTERNAL_CHECK(cairo_surface_status(s.get()) == CAIRO_STATUS_SUCCESS, "svg_to_png: cannot create a {}x{} surface", W, H);
  std::unique_ptr<cairo_t, CairoFree> cr(cairo_create(s.get()));
  cairo_set_source_rgb(cr.get(), 1, 1, 1);
  cairo_paint(cr.get());
  const RsvgRectangle viewport{0, 0, static_cast<double>(W), static_cast<double>(H)};
  GError* err = nullptr;
  if (!rsvg_handle_render_document(h.get(), cr.get(), &viewport, &err)) {
    const std::string msg = err ? err->message : "unknown error";
    if (err) g_error_free(err);
    fail("svg_to_png: {}: rendering failed: {}", path, msg);
  }
  cr.reset();
  cairo_surface_flush(s.get());
  write_file_atomically(path, surface_png(s.get()));
}

}  // namespace deft::track::svg
