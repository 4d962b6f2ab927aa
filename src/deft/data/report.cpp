#include "deft/data/report.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "deft/tensor/error.h"

namespace deft::data {

namespace {

using json = nlohmann::json;

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

Tensor float_contig(const Tensor& x) {
  if (x.dtype() == DType::Float32) return x.contiguous_copy();
  return x.to(DType::Float32);
}

std::string fmt_num(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  const double d = v.get<double>();
  if (d == std::floor(d) && std::fabs(d) < 1e12) return fmt::format("{}", static_cast<long long>(d));
  return fmt::format("{:.4g}", d);
}

std::string str_or(const json& j, const char* key, const std::string& dflt = "") {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : dflt;
}

// Column width for a name: its length in code points (UTF-8), so the table lines up.
size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::string pad(const std::string& s, size_t width) {
  const size_t w = display_width(s);
  return w >= width ? s : s + std::string(width - w, ' ');
}

}  // namespace

json data_report(const Dataset& d, const TableSchema* schema) {
  json r;
  r["name"] = d.name;
  r["source"] = d.source;
  const int64_t n = d.size();
  r["rows"] = n;

  if (d.features.defined() && d.features.dim() == 4) {
    r["kind"] = "image";
    const Shape& s = d.features.shape();
    const int64_t c_n = s[1], plane = s[2] * s[3];
    double mn = std::numeric_limits<double>::infinity(), mx = -mn, sum = 0;
    std::vector<double> ch(static_cast<size_t>(c_n), 0.0);
    if (d.features.dtype() == DType::UInt8) {
      const Tensor x = d.features.contiguous_copy();
      const uint8_t* p = x.data<uint8_t>();
      for (int64_t i = 0; i < n; ++i)
        for (int64_t c = 0; c < c_n; ++c) {
          const uint8_t* q = p + (i * c_n + c) * plane;
          int64_t csum = 0;
          for (int64_t k = 0; k < plane; ++k) {
            csum += q[k];
            mn = std::min<double>(mn, q[k]);
            mx = std::max<double>(mx, q[k]);
          }
          ch[static_cast<size_t>(c)] += static_cast<double>(csum);
        }
    } else {
      const Tensor x = float_contig(d.features);
      const float* p = x.data<float>();
      for (int64_t i = 0; i < n; ++i)
        for (int64_t c = 0; c < c_n; ++c) {
          const float* q = p + (i * c_n + c) * plane;
          for (int64_t k = 0; k < plane; ++k) {
            mn = std::min<double>(mn, q[k]);
            mx = std::max<double>(mx, q[k]);
            ch[static_cast<size_t>(c)] += q[k];
          }
        }
    }
    json cm = json::array();
    for (double v : ch) {
      sum += v;
      cm.push_back(num(n > 0 && plane > 0 ? v / static_cast<double>(n * plane) : NAN));
    }
    r["image"] = {{"shape", Shape(s.begin() + 1, s.end())},
                  {"dtype", dtype_name(d.features.dtype())},
                  {"pixel_min", num(mn)},
                  {"pixel_max", num(mx)},
                  {"pixel_mean", num(n > 0 && plane > 0 && c_n > 0 ? sum / static_cast<double>(n * plane * c_n) : NAN)},
                  {"channel_mean", cm}};
  } else if (d.features.defined()) {
    r["kind"] = "table";
    DEFT_CHECK(d.features.dim() == 2, "data report: table features must be [N,F], got {}",
               shape_str(d.features.shape()));
    const int64_t f = d.features.shape()[1];
    const bool use_schema = schema && static_cast<int64_t>(schema->features.size()) == f;
    const Tensor x = float_contig(d.features);
    const float* p = x.data<float>();
    int64_t missing_total = 0;
    json cols = json::array();
    for (int64_t j = 0; j < f; ++j) {
      std::string name = use_schema ? schema->features[static_cast<size_t>(j)].name
                         : static_cast<int64_t>(d.feature_names.size()) == f ? d.feature_names[static_cast<size_t>(j)]
                                                                            : fmt::format("f{}", j);
      const bool categorical =
          use_schema && schema->features[static_cast<size_t>(j)].type == ColumnType::Categorical;
      int64_t missing = 0;
      json cj = {{"name", name}, {"type", categorical ? "categorical" : "numeric"}};
      if (!categorical) {
        double mn = std::numeric_limits<double>::infinity(), mx = -mn, sum = 0;
        int64_t cnt = 0;
        for (int64_t i = 0; i < n; ++i) {
          const float v = p[i * f + j];
          if (!std::isfinite(v)) {
            ++missing;
            continue;
          }
          mn = std::min<double>(mn, v), mx = std::max<double>(mx, v), sum += v, ++cnt;
        }
        cj["missing"] = missing;
        cj["min"] = num(cnt ? mn : NAN);
        cj["max"] = num(cnt ? mx : NAN);
        cj["mean"] = num(cnt ? sum / static_cast<double>(cnt) : NAN);
      } else {
        const auto& cats = schema->features[static_cast<size_t>(j)].categories;
        std::map<int64_t, int64_t> counts;  // code -> rows; -1: not a known category
        for (int64_t i = 0; i < n; ++i) {
          const float v = p[i * f + j];
          if (!std::isfinite(v)) {
            ++missing;
            continue;
          }
          const bool known = v >= 0 && v < static_cast<float>(cats.size()) && v == std::floor(v);
          ++counts[known ? static_cast<int64_t>(v) : -1];
        }
        std::vector<std::pair<int64_t, int64_t>> by_count(counts.begin(), counts.end());
        std::stable_sort(by_count.begin(), by_count.end(),
                         [](const auto& a, const auto& b) { return a.second > b.second; });
        json top = json::array();
        for (size_t k = 0; k < by_count.size() && k < 5; ++k)
          top.push_back({{"value", by_count[k].first < 0 ? std::string("<unknown>")
                                                         : cats[static_cast<size_t>(by_count[k].first)]},
                         {"count", by_count[k].second}});
        cj["missing"] = missing;
        cj["distinct"] = counts.size();
        cj["top"] = top;
      }
      missing_total += missing;
      cols.push_back(std::move(cj));
    }
    r["num_columns"] = f;
    r["missing_total"] = missing_total;
    r["columns"] = std::move(cols);
  } else if (!d.texts.empty()) {
    r["kind"] = "text";
    size_t total = 0, longest = 0;
    for (const auto& s : d.texts) total += s.size(), longest = std::max(longest, s.size());
    r["text"] = {{"mean_length", static_cast<double>(total) / static_cast<double>(d.texts.size())},
                 {"max_length", longest}};
  } else {
    r["kind"] = "empty";
  }

  if (d.labels.defined()) {
    json t;
    if (schema && !schema->target.empty()) {
      t["name"] = schema->target;
      t["dropped_missing"] = schema->dropped_missing_target;
    }
    if (d.task == Task::Classification) {
      t["task"] = "classification";
      const auto y = d.labels.to_vector<int64_t>();
      int64_t k = d.num_classes();
      if (k == 0)
        for (int64_t v : y) k = std::max(k, v + 1);
      std::vector<int64_t> counts(static_cast<size_t>(k), 0);
      int64_t invalid = 0;
      for (int64_t v : y)
        if (v >= 0 && v < k)
          ++counts[static_cast<size_t>(v)];
        else
          ++invalid;
      json classes = json::array();
      for (int64_t c = 0; c < k; ++c) {
        const std::string name =
            c < d.num_classes() ? d.class_names[static_cast<size_t>(c)] : fmt::format("{}", c);
        classes.push_back({{"name", name},
                           {"count", counts[static_cast<size_t>(c)]},
                           {"fraction", y.empty() ? 0.0 : static_cast<double>(counts[static_cast<size_t>(c)]) /
                                                              static_cast<double>(y.size())}});
      }
      t["num_classes"] = k;
      t["classes"] = std::move(classes);
      if (invalid) t["invalid_labels"] = invalid;
    } else {
      t["task"] = "regression";
      const auto y = d.labels.to_vector<float>();
      double mn = std::numeric_limits<double>::infinity(), mx = -mn, sum = 0;
      int64_t cnt = 0;
      for (float v : y)
        if (std::isfinite(v)) mn = std::min<double>(mn, v), mx = std::max<double>(mx, v), sum += v, ++cnt;
      t["min"] = num(cnt ? mn : NAN);
      t["max"] = num(cnt ? mx : NAN);
      t["mean"] = num(cnt ? sum / static_cast<double>(cnt) : NAN);
    }
    r["target"] = std::move(t);
  }
  return r;
}

std::string format_report(const json& r) {
  std::string out;
  auto line = [&](const std::string& key, const std::string& value) { out += pad(key, 14) + value + "\n"; };
  try {
    const std::string name = str_or(r, "name", str_or(r, "source"));
    if (!name.empty()) line("data", name);
    if (r.contains("source") && str_or(r, "source") != name) line("source", str_or(r, "source"));
    if (r.contains("kind")) line("kind", str_or(r, "kind"));
    if (r.contains("rows")) line("rows", fmt_num(r["rows"]));
    if (r.contains("delimiter"))
      line("format", fmt::format("delimiter {}, decimal {}, {}", str_or(r, "delimiter"), str_or(r, "decimal", "."),
                                 r.value("header", false) ? "header row" : "no header (columns named col0, col1, ...)"));
    if (r.contains("target")) {
      const json& t = r["target"];
      std::string s = str_or(t, "task");
      if (t.contains("num_classes")) s += fmt::format(", {} classes", fmt_num(t["num_classes"]));
      if (t.contains("name")) s += fmt::format(" (target \"{}\")", str_or(t, "name"));
      line("task", s);
      if (t.contains("dropped_missing") && t["dropped_missing"].get<int64_t>() > 0)
        line("dropped", fmt::format("{} rows with no target value", fmt_num(t["dropped_missing"])));
    }
    if (r.contains("num_columns")) line("columns", fmt_num(r["num_columns"]));
    if (r.contains("missing_total")) line("missing", fmt::format("{} values", fmt_num(r["missing_total"])));
    if (r.contains("image")) {
      const json& im = r["image"];
      std::string shape;
      for (const auto& v : im["shape"]) shape += fmt::format("{}{}", shape.empty() ? "" : "x", v.dump());
      line("images", fmt::format("{} (CxHxW), {}", shape, str_or(im, "dtype")));
      line("pixels", fmt::format("min {}, max {}, mean {}", fmt_num(im["pixel_min"]), fmt_num(im["pixel_max"]),
                                 fmt_num(im["pixel_mean"])));
      std::string cm;
      for (const auto& v : im["channel_mean"]) cm += fmt::format("{}{}", cm.empty() ? "" : ", ", fmt_num(v));
      line("channel mean", cm);
    }
    if (r.contains("text")) {
      const json& tx = r["text"];
      line("text", fmt::format("mean length {} bytes, longest {}", fmt_num(tx["mean_length"]), fmt_num(tx["max_length"])));
    }

    if (r.contains("columns") && !r["columns"].empty()) {
      size_t w = 6;
      for (const auto& c : r["columns"]) w = std::max(w, display_width(str_or(c, "name")));
      w = std::min<size_t>(w, 40) + 2;
      out += fmt::format("\n{}{}{}{}{}{}mean\n", pad("column", w), pad("type", 13), pad("missing", 9),
                         pad("distinct", 10), pad("min", 11), pad("max", 11));
      for (const auto& c : r["columns"]) {
        const bool cat = str_or(c, "type") == "categorical";
        out += pad(str_or(c, "name"), w) + pad(str_or(c, "type"), 13) + pad(fmt_num(c.value("missing", json())), 9) +
               pad(cat ? fmt_num(c.value("distinct", json())) : "", 10);
        if (!cat)
          out += pad(fmt_num(c.value("min", json())), 11) + pad(fmt_num(c.value("max", json())), 11) +
                 fmt_num(c.value("mean", json()));
        else if (c.contains("top")) {
          std::string top;
          for (const auto& e : c["top"])
            top += fmt::format("{}{} ({})", top.empty() ? "top: " : ", ", str_or(e, "value"), fmt_num(e["count"]));
          out += top;
        }
        while (!out.empty() && out.back() == ' ') out.pop_back();
        out += "\n";
      }
    }

    if (r.contains("target")) {
      const json& t = r["target"];
      if (t.contains("classes")) {
        out += "\nclass balance\n";
        size_t w = 5;
        for (const auto& c : t["classes"]) w = std::max(w, display_width(str_or(c, "name")));
        w = std::min<size_t>(w, 40) + 2;
        for (const auto& c : t["classes"])
          out += fmt::format("  {}{}{:5.1f}%\n", pad(str_or(c, "name"), w), pad(fmt_num(c["count"]), 10),
                             100.0 * c.value("fraction", 0.0));
        if (t.contains("invalid_labels"))
          out += fmt::format("  {} labels outside the class range\n", fmt_num(t["invalid_labels"]));
      } else if (t.contains("min")) {
        out += fmt::format("\ntarget      min {}, max {}, mean {}\n", fmt_num(t["min"]), fmt_num(t["max"]),
                           fmt_num(t["mean"]));
      }
    }
  } catch (const json::exception& e) {
    fail<>("data report: malformed report JSON: {}", e.what());
  }
  return out;
}

}  // namespace deft::data
