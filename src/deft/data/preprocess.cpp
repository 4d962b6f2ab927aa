#include "deft/data/preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "deft/tensor/error.h"
#include "deft/tensor/parallel.h"

namespace deft::data {

namespace {

constexpr const char* kFormat = "deft.preprocessor";
constexpr int kVersion = 1;
constexpr const char* kAllMissing = "all missing";
constexpr const char* kConstant = "constant";

template <class E>
struct EnumName {
  E value;
  const char* name;
};
constexpr EnumName<MissingPolicy> kMissingNames[] = {{MissingPolicy::DropRows, "drop_rows"},
                                                     {MissingPolicy::Mean, "mean"},
                                                     {MissingPolicy::Median, "median"},
                                                     {MissingPolicy::MostFrequent, "most_frequent"}};
constexpr EnumName<Scaling> kScalingNames[] = {
    {Scaling::None, "none"}, {Scaling::Standard, "standard"}, {Scaling::MinMax, "minmax"}};
constexpr EnumName<Encoding> kEncodingNames[] = {{Encoding::OneHot, "onehot"}, {Encoding::Ordinal, "ordinal"}};

template <class E, size_t N>
const char* enum_name(const EnumName<E> (&table)[N], E v) {
  for (const auto& e : table)
    if (e.value == v) return e.name;
  return "?";
}
template <class E, size_t N>
E enum_value(const EnumName<E> (&table)[N], const std::string& s, const char* what) {
  for (const auto& e : table)
    if (s == e.name) return e.value;
  fail<>("preprocessor: unknown {} \"{}\"", what, s);
}

nlohmann::json finite(double v, const char* what) {
  DEFT_INTERNAL_CHECK(std::isfinite(v), "preprocessor: {} is not finite ({})", what, v);
  return v;
}

Tensor float_contig(const Tensor& x) {
  if (x.dtype() == DType::Float32) return x.contiguous_copy();
  return x.to(DType::Float32);
}

// Linear interpolation between order statistics (numpy's default); `s` sorted, non-empty.
double quantile(const std::vector<double>& s, double q) {
  const double pos = q * static_cast<double>(s.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, s.size() - 1);
  return s[lo] + (pos - static_cast<double>(lo)) * (s[hi] - s[lo]);
}

double most_frequent(const std::vector<double>& sorted) {
  double best = sorted[0];
  size_t best_n = 0;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j < sorted.size() && sorted[j] == sorted[i]) ++j;
    if (j - i > best_n) best = sorted[i], best_n = j - i;  // ties: the smallest value
    i = j;
  }
  return best;
}

uint64_t hash_bytes(const unsigned char* p, size_t n, uint64_t h = 1469598103934665603ull) {
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

// ----------------------------------------------------------------------------

nlohmann::json PreprocessOptions::to_json() const {
  return {{"missing", enum_name(kMissingNames, missing)},
          {"drop_duplicates", drop_duplicates},
          {"drop_constant", drop_constant},
          {"clip_outliers", clip_outliers},
          {"clip_low", clip_low},
          {"clip_high", clip_high},
          {"scaling", enum_name(kScalingNames, scaling)},
          {"encoding", enum_name(kEncodingNames, encoding)},
          {"max_categories", max_categories},
          {"scale_pixels", scale_pixels},
          {"normalize_channels", normalize_channels}};
}

PreprocessOptions PreprocessOptions::from_json(const nlohmann::json& j) {
  try {
    PreprocessOptions o;
    o.missing = enum_value(kMissingNames, j.at("missing").get<std::string>(), "missing-value policy");
    o.drop_duplicates = j.at("drop_duplicates").get<bool>();
    o.drop_constant = j.at("drop_constant").get<bool>();
    o.clip_outliers = j.at("clip_outliers").get<bool>();
    o.clip_low = j.at("clip_low").get<double>();
    o.clip_high = j.at("clip_high").get<double>();
    o.scaling = enum_value(kScalingNames, j.at("scaling").get<std::string>(), "scaling");
    o.encoding = enum_value(kEncodingNames, j.at("encoding").get<std::string>(), "encoding");
    o.max_categories = j.at("max_categories").get<int64_t>();
    o.scale_pixels = j.at("scale_pixels").get<bool>();
    o.normalize_channels = j.at("normalize_channels").get<bool>();
    return o;
  } catch (const nlohmann::json::exception& e) {
    fail<>("preprocessor: malformed options JSON: {}", e.what());
  }
}

int64_t Preprocessor::Column::width(Encoding e) const {
  if (dropped) return 0;
  if (!categorical || e == Encoding::Ordinal) return 1;
  return static_cast<int64_t>(kept.size()) + 1;
}

Preprocessor::Preprocessor(PreprocessOptions opts, TableSchema schema) : opts_(std::move(opts)), schema_(std::move(schema)) {
  DEFT_CHECK(opts_.clip_low >= 0 && opts_.clip_low < opts_.clip_high && opts_.clip_high <= 1,
             "preprocessor: clip quantiles must satisfy 0 <= low < high <= 1, got {} and {}", opts_.clip_low,
             opts_.clip_high);
  DEFT_CHECK(opts_.max_categories >= 1, "preprocessor: max_categories must be at least 1, got {}",
             opts_.max_categories);
}

void Preprocessor::check_fitted(const char* what) const {
  DEFT_CHECK(fitted(), "preprocessor: {} before fit()", what);
}

int64_t Preprocessor::num_inputs() const {
  if (kind_ == Kind::Image) return shape_numel(image_.chw);
  return static_cast<int64_t>(columns_.size());
}

int64_t Preprocessor::num_outputs() const {
  if (kind_ == Kind::Image) return shape_numel(image_.chw);
  int64_t n = 0;
  for (const auto& c : columns_) n += c.width(opts_.encoding);
  return n;
}

std::vector<std::string> Preprocessor::output_feature_names() const {
  check_fitted("output_feature_names()");
  std::vector<std::string> out;
  if (kind_ == Kind::Image) {
    for (int64_t c = 0; c < image_.chw[0]; ++c)
      for (int64_t y = 0; y < image_.chw[1]; ++y)
        for (int64_t x = 0; x < image_.chw[2]; ++x) out.push_back(fmt::format("c{}_y{}_x{}", c, y, x));
    return out;
  }
  for (const auto& c : columns_) {
    if (c.dropped) continue;
    if (!c.categorical || opts_.encoding == Encoding::Ordinal) {
      out.push_back(c.name);
      continue;
    }
    for (const auto& k : c.kept) out.push_back(c.name + "=" + k);
    out.push_back(c.name + "=<unknown>");
  }
  return out;
}

std::vector<int64_t> Preprocessor::keep_rows(const Tensor& features, const Tensor& labels) const {
  const int64_t n = features.shape()[0];
  std::vector<int64_t> rows;
  rows.reserve(static_cast<size_t>(n));
  if (kind_ == Kind::Table && opts_.missing == MissingPolicy::DropRows) {
    const Tensor x = float_contig(features);
    const float* p = x.data<float>();
    const auto f = static_cast<int64_t>(columns_.size());
    for (int64_t i = 0; i < n; ++i) {
      bool ok = true;
      for (int64_t j = 0; j < f && ok; ++j)
        if (!std::isfinite(p[i * f + j]) && columns_[static_cast<size_t>(j)].drop_reason != kAllMissing) ok = false;
      if (ok) rows.push_back(i);
    }
  } else {
    rows.resize(static_cast<size_t>(n));
    std::iota(rows.begin(), rows.end(), int64_t{0});
  }
  if (!opts_.drop_duplicates) return rows;

  const Tensor x = features.contiguous_copy();
  const auto* xb = static_cast<const unsigned char*>(x.raw_data());
  const size_t row_bytes = static_cast<size_t>(n ? x.numel() / n : 0) * dtype_size(x.dtype());
  Tensor y;
  const unsigned char* yb = nullptr;
  size_t y_bytes = 0;
  if (labels.defined() && labels.numel() == n) {
    y = labels.contiguous_copy();
    yb = static_cast<const unsigned char*>(y.raw_data());
    y_bytes = dtype_size(y.dtype());
  }
  auto hash = [&](int64_t i) {
    uint64_t h = hash_bytes(xb + static_cast<size_t>(i) * row_bytes, row_bytes);
    if (yb) h = hash_bytes(yb + static_cast<size_t>(i) * y_bytes, y_bytes, h);
    return static_cast<size_t>(h);
  };
  auto equal = [&](int64_t a, int64_t b) {
    if (std::memcmp(xb + static_cast<size_t>(a) * row_bytes, xb + static_cast<size_t>(b) * row_bytes, row_bytes))
      return false;
    return !yb || !std::memcmp(yb + static_cast<size_t>(a) * y_bytes, yb + static_cast<size_t>(b) * y_bytes, y_bytes);
  };
  std::unordered_set<int64_t, decltype(hash), decltype(equal)> seen(rows.size() * 2 + 1, hash, equal);
  std::vector<int64_t> unique;
  unique.reserve(rows.size());
  for (int64_t i : rows)
    if (seen.insert(i).second) unique.push_back(i);
  return unique;
}

void Preprocessor::fit(const Dataset& train) {
  try {
    fit_impl(train);
  } catch (...) {
    kind_ = Kind::Unfitted;
    columns_.clear();
    image_ = Image{};
    throw;
  }
}

void Preprocessor::fit_impl(const Dataset& train) {
  const Tensor& feats = train.features;
  DEFT_CHECK(feats.defined(), "preprocessor: the training data {} has no features", train.name);
  DEFT_CHECK(feats.dim() == 2 || feats.dim() == 4,
             "preprocessor: features must be [N,F] (a table) or [N,C,H,W] (images), got {}", shape_str(feats.shape()));
  const int64_t n = feats.shape()[0];
  DEFT_CHECK(n > 0, "preprocessor: the training data {} has no rows", train.name);
  DEFT_CHECK(!train.labels.defined() || train.labels.numel() == n,
             "preprocessor: {} has {} feature rows but {} labels", train.name, n, train.labels.numel());
  columns_.clear();
  image_ = Image{};

  if (feats.dim() == 4) {
    kind_ = Kind::Image;
    const Shape& s = feats.shape();
    image_.chw = {s[1], s[2], s[3]};
    DEFT_CHECK(s[1] > 0 && s[2] > 0 && s[3] > 0, "preprocessor: empty images {}", shape_str(s));
    image_.pixel_scale = opts_.scale_pixels ? 1.0 / 255.0 : 1.0;
    const auto c_n = static_cast<size_t>(s[1]);
    const int64_t plane = s[2] * s[3];
    image_.mean.assign(c_n, 0.0);
    image_.std.assign(c_n, 1.0);
    if (opts_.normalize_channels) {
      const std::vector<int64_t> rows = keep_rows(feats, train.labels);
      const Tensor x = feats.contiguous_copy();
      const double count = static_cast<double>(rows.size()) * static_cast<double>(plane);
      for (size_t c = 0; c < c_n; ++c) {
        double mean = 0, var = 0;
        if (x.dtype() == DType::UInt8) {
          // Exact: a histogram of the 256 values.
          std::vector<int64_t> hist(256, 0);
          const uint8_t* p = x.data<uint8_t>();
          for (int64_t i : rows) {
            const uint8_t* q = p + (i * static_cast<int64_t>(c_n) + static_cast<int64_t>(c)) * plane;
            for (int64_t k = 0; k < plane; ++k) ++hist[q[k]];
          }
          for (int v = 0; v < 256; ++v) mean += static_cast<double>(hist[static_cast<size_t>(v)]) * v * image_.pixel_scale;
          mean /= count;
          for (int v = 0; v < 256; ++v) {
            const double d = v * image_.pixel_scale - mean;
            var += static_cast<double>(hist[static_cast<size_t>(v)]) * d * d;
          }
        } else {
          const Tensor xf = float_contig(x);
          const float* p = xf.data<float>();
          for (int64_t i : rows) {
            const float* q = p + (i * static_cast<int64_t>(c_n) + static_cast<int64_t>(c)) * plane;
            for (int64_t k = 0; k < plane; ++k) mean += static_cast<double>(q[k]) * image_.pixel_scale;
          }
          mean /= count;
          for (int64_t i : rows) {
            const float* q = p + (i * static_cast<int64_t>(c_n) + static_cast<int64_t>(c)) * plane;
            for (int64_t k = 0; k < plane; ++k) {
              const double d = static_cast<double>(q[k]) * image_.pixel_scale - mean;
              var += d * d;
            }
          }
        }
        DEFT_CHECK(std::isfinite(mean) && std::isfinite(var), "preprocessor: {} has non-finite pixel values",
                   train.name);
        const double sd = std::sqrt(var / count);
        image_.mean[c] = mean;
        image_.std[c] = sd > 1e-12 ? sd : 1.0;
      }
    }
    derive();
    return;
  }

  // Tables.
  kind_ = Kind::Table;
  const int64_t f = feats.shape()[1];
  DEFT_CHECK(schema_.empty() || static_cast<int64_t>(schema_.features.size()) == f,
             "preprocessor: the schema has {} feature columns but {} has {}", schema_.features.size(), train.name, f);
  const Tensor x = float_contig(feats);
  const float* p = x.data<float>();
  columns_.assign(static_cast<size_t>(f), Column{});
  for (int64_t j = 0; j < f; ++j) {
    Column& c = columns_[static_cast<size_t>(j)];
    if (!schema_.empty()) {
      c.name = schema_.features[static_cast<size_t>(j)].name;
      c.categorical = schema_.features[static_cast<size_t>(j)].type == ColumnType::Categorical;
    } else {
      c.name = static_cast<int64_t>(train.feature_names.size()) == f ? train.feature_names[static_cast<size_t>(j)]
                                                                      : fmt::format("f{}", j);
    }
    bool any = false;
    for (int64_t i = 0; i < n && !any; ++i) any = std::isfinite(p[i * f + j]);
    if (!any) {
      c.dropped = true;
      c.drop_reason = kAllMissing;
    }
  }
  const std::vector<int64_t> rows = keep_rows(x, train.labels);
  DEFT_CHECK(!rows.empty(), "preprocessor: no training rows are left after dropping rows with missing values in {}; "
             "impute instead (mean, median or most frequent)", train.name);

  std::vector<double> vals;
  for (int64_t j = 0; j < f; ++j) {
    Column& c = columns_[static_cast<size_t>(j)];
    if (c.dropped) continue;
    if (!c.categorical) {
      vals.clear();
      int64_t missing = 0;
      for (int64_t i : rows) {
        const float v = p[i * f + j];
        if (std::isfinite(v))
          vals.push_back(v);
        else
          ++missing;
      }
      // Order statistics only when a step needs them.
      const bool need_sorted = opts_.missing == MissingPolicy::Median ||
                               opts_.missing == MissingPolicy::MostFrequent || opts_.clip_outliers;
      if (need_sorted) std::sort(vals.begin(), vals.end());
      if (vals.empty()) {
        c.fill = 0;
      } else {
        switch (opts_.missing) {
          case MissingPolicy::DropRows:
          case MissingPolicy::Mean: {
            double s = 0;
            for (double v : vals) s += v;
            c.fill = s / static_cast<double>(vals.size());
            break;
          }
          case MissingPolicy::Median: c.fill = quantile(vals, 0.5); break;
          case MissingPolicy::MostFrequent: c.fill = most_frequent(vals); break;
        }
      }
      double lo = c.fill, hi = c.fill;
      if (!vals.empty()) {
        const auto [mn_it, mx_it] = std::minmax_element(vals.begin(), vals.end());
        lo = *mn_it, hi = *mx_it;
      }
      if (missing) lo = std::min(lo, c.fill), hi = std::max(hi, c.fill);
      if (lo == hi && opts_.drop_constant) {
        c.dropped = true;
        c.drop_reason = kConstant;
        continue;
      }
      if (opts_.clip_outliers && !vals.empty()) {
        c.clip = true;
        c.clip_lo = quantile(vals, opts_.clip_low);
        c.clip_hi = quantile(vals, opts_.clip_high);
      }
      auto prepared = [&](double v) {
        if (c.clip) v = std::min(std::max(v, c.clip_lo), c.clip_hi);
        return v;
      };
      // Statistics of the imputed, clipped training values.
      double mn = std::numeric_limits<double>::infinity(), mx = -mn, sum = 0;
      const auto count = static_cast<double>(vals.size() + static_cast<size_t>(missing));
      for (double v : vals) {
        v = prepared(v);
        mn = std::min(mn, v), mx = std::max(mx, v), sum += v;
      }
      if (missing) {
        const double v = prepared(c.fill);
        mn = std::min(mn, v), mx = std::max(mx, v), sum += v * static_cast<double>(missing);
      }
      const double mean = sum / count;
      if (opts_.scaling == Scaling::Standard) {
        double var = 0;
        for (double v : vals) {
          const double d = prepared(v) - mean;
          var += d * d;
        }
        if (missing) {
          const double d = prepared(c.fill) - mean;
          var += d * d * static_cast<double>(missing);
        }
        const double sd = std::sqrt(var / count);
        c.shift = mn == mx ? mn : mean;
        c.scale = (mn == mx || !(sd > 0)) ? 1.0 : sd;
      } else if (opts_.scaling == Scaling::MinMax) {
        c.shift = mn;
        c.scale = mx > mn ? mx - mn : 1.0;
      }
      continue;
    }

    // Categorical.
    const auto& cats = schema_.features[static_cast<size_t>(j)].categories;
    const auto k_schema = static_cast<int64_t>(cats.size());
    std::vector<int64_t> counts(static_cast<size_t>(k_schema), 0);
    for (int64_t i : rows) {
      const float v = p[i * f + j];
      if (std::isfinite(v) && v >= 0 && v < static_cast<float>(k_schema) && v == std::floor(v))
        ++counts[static_cast<size_t>(v)];
    }
    std::vector<int64_t> seen;
    for (int64_t q = 0; q < k_schema; ++q)
      if (counts[static_cast<size_t>(q)] > 0) seen.push_back(q);
    if (static_cast<int64_t>(seen.size()) > opts_.max_categories) {
      std::stable_sort(seen.begin(), seen.end(), [&](int64_t a, int64_t b) {
        return counts[static_cast<size_t>(a)] > counts[static_cast<size_t>(b)];
      });
      seen.resize(static_cast<size_t>(opts_.max_categories));
      std::sort(seen.begin(), seen.end());
    }
    for (int64_t q : seen) c.kept.push_back(cats[static_cast<size_t>(q)]);
    derive();  // slot_of_code for this column
    const auto unknown = static_cast<int64_t>(c.kept.size());
    std::vector<int64_t> slot_counts(static_cast<size_t>(unknown) + 1, 0);
    int64_t missing = 0;
    for (int64_t i : rows) {
      const float v = p[i * f + j];
      if (!std::isfinite(v)) {
        ++missing;
        continue;
      }
      const bool known = v >= 0 && v < static_cast<float>(k_schema) && v == std::floor(v);
      ++slot_counts[static_cast<size_t>(known ? c.slot_of_code[static_cast<size_t>(v)] : unknown)];
    }
    c.fill_slot = unknown;
    int64_t best = 0, used = 0;
    for (int64_t s = 0; s <= unknown; ++s) {
      const int64_t cnt = slot_counts[static_cast<size_t>(s)];
      if (cnt > 0) ++used;
      if (cnt > best) best = cnt, c.fill_slot = s;
    }
    if (used <= 1 && opts_.drop_constant) {
      c.dropped = true;
      c.drop_reason = kConstant;
    }
  }
  derive();
}

void Preprocessor::derive() {
  for (size_t j = 0; j < columns_.size(); ++j) {
    Column& c = columns_[j];
    c.slot_of_code.clear();
    if (!c.categorical) continue;
    DEFT_CHECK(j < schema_.features.size(), "preprocessor: categorical column \"{}\" without a schema", c.name);
    std::unordered_map<std::string, int64_t> slot;
    for (size_t s = 0; s < c.kept.size(); ++s) slot.emplace(c.kept[s], static_cast<int64_t>(s));
    for (const auto& cat : schema_.features[j].categories) {
      const auto it = slot.find(cat);
      c.slot_of_code.push_back(it == slot.end() ? static_cast<int64_t>(c.kept.size()) : it->second);
    }
  }
  img_a_.clear();
  img_b_.clear();
  for (size_t c = 0; c < image_.mean.size(); ++c) {
    img_a_.push_back(static_cast<float>(image_.pixel_scale / image_.std[c]));
    img_b_.push_back(static_cast<float>(-image_.mean[c] / image_.std[c]));
  }
}

Tensor Preprocessor::transform_features(const Tensor& raw) const {
  check_fitted("transform()");
  DEFT_CHECK(raw.defined(), "preprocessor: no features to transform");
  if (kind_ == Kind::Image) {
    DEFT_CHECK(raw.dim() == 4 && Shape(raw.shape().begin() + 1, raw.shape().end()) == image_.chw,
               "preprocessor: fitted on images {} (C,H,W), got features {}", shape_str(image_.chw),
               shape_str(raw.shape()));
    const int64_t n = raw.shape()[0];
    const int64_t c_n = image_.chw[0];
    const int64_t plane = image_.chw[1] * image_.chw[2];
    Tensor out = Tensor::empty(raw.shape());
    float* o = out.data<float>();
    const Tensor x = raw.contiguous_copy();
    const bool u8 = x.dtype() == DType::UInt8;
    const Tensor xf = u8 ? x : float_contig(x);
    parallel_for(0, n * c_n, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(plane, 1)), [&](int64_t b, int64_t e) {
      for (int64_t nc = b; nc < e; ++nc) {
        const auto c = static_cast<size_t>(nc % c_n);
        const float a = img_a_[c], bb = img_b_[c];
        float* dst = o + nc * plane;
        if (u8) {
          const uint8_t* src = xf.data<uint8_t>() + nc * plane;
          for (int64_t k = 0; k < plane; ++k) dst[k] = static_cast<float>(src[k]) * a + bb;
        } else {
          const float* src = xf.data<float>() + nc * plane;
          for (int64_t k = 0; k < plane; ++k) dst[k] = src[k] * a + bb;
        }
      }
    });
    return out;
  }

  DEFT_CHECK(raw.dim() == 2 && raw.shape()[1] == static_cast<int64_t>(columns_.size()),
             "preprocessor: fitted on {} feature columns, got features {}", columns_.size(), shape_str(raw.shape()));
  const int64_t n = raw.shape()[0];
  const Tensor x = float_contig(raw);
  Tensor out = Tensor::empty({n, num_outputs()});
  transform_table_rows(x.data<float>(), n, out.data<float>());
  return out;
}

void Preprocessor::transform_table_rows(const float* p, int64_t n, float* o) const {
  check_fitted("transform_table_rows");
  const auto f = static_cast<int64_t>(columns_.size());
  const int64_t w = num_outputs();
  std::fill(o, o + n * w, 0.0f);
  const bool onehot = opts_.encoding == Encoding::OneHot;
  parallel_for(0, n, std::max<int64_t>(1, 4096 / std::max<int64_t>(w, 1)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float* dst = o + i * w;
      for (int64_t j = 0; j < f; ++j) {
        const Column& c = columns_[static_cast<size_t>(j)];
        if (c.dropped) continue;
        const float v = p[i * f + j];
        if (!c.categorical) {
          double d = std::isfinite(v) ? static_cast<double>(v) : c.fill;
          if (c.clip) d = std::min(std::max(d, c.clip_lo), c.clip_hi);
          *dst++ = static_cast<float>((d - c.shift) / c.scale);
          continue;
        }
        const auto unknown = static_cast<int64_t>(c.kept.size());
        int64_t slot;
        if (!std::isfinite(v))
          slot = c.fill_slot;
        else if (v >= 0 && v < static_cast<float>(c.slot_of_code.size()) && v == std::floor(v))
          slot = c.slot_of_code[static_cast<size_t>(v)];
        else
          slot = unknown;
        if (onehot) {
          dst[slot] = 1.0f;
          dst += unknown + 1;
        } else {
          *dst++ = static_cast<float>(slot);
        }
      }
    }
  });
}

Dataset Preprocessor::transform(const Dataset& d) const {
  Dataset out;
  out.name = d.name;
  out.source = d.source;
  out.task = d.task;
  out.class_names = d.class_names;
  out.labels = d.labels;
  out.texts = d.texts;
  out.features = transform_features(d.features);
  if (kind_ == Kind::Table) out.feature_names = output_feature_names();
  return out;
}

Dataset Preprocessor::filter_rows(const Dataset& d) const {
  check_fitted("filter_rows()");
  DEFT_CHECK(d.features.defined(), "preprocessor: {} has no features", d.name);
  if (kind_ == Kind::Table)
    DEFT_CHECK(d.features.dim() == 2 && d.features.shape()[1] == static_cast<int64_t>(columns_.size()),
               "preprocessor: fitted on {} feature columns, got features {}", columns_.size(),
               shape_str(d.features.shape()));
  const std::vector<int64_t> rows = keep_rows(d.features, d.labels);
  if (static_cast<int64_t>(rows.size()) == d.size()) return d;
  return d.subset(rows);
}

Dataset Preprocessor::fit_transform(const Dataset& train) {
  fit(train);
  return transform(filter_rows(train));
}

nlohmann::json Preprocessor::to_json() const {
  check_fitted("to_json()");
  nlohmann::json j = {{"format", kFormat},
                      {"version", kVersion},
                      {"kind", kind_ == Kind::Image ? "image" : "table"},
                      {"options", opts_.to_json()}};
  if (!schema_.empty()) j["schema"] = schema_.to_json();
  if (kind_ == Kind::Image) {
    nlohmann::json mean = nlohmann::json::array(), sd = nlohmann::json::array();
    for (double v : image_.mean) mean.push_back(finite(v, "channel mean"));
    for (double v : image_.std) sd.push_back(finite(v, "channel std"));
    j["image"] = {{"shape", image_.chw}, {"pixel_scale", image_.pixel_scale}, {"mean", mean}, {"std", sd}};
    return j;
  }
  nlohmann::json cols = nlohmann::json::array();
  for (const auto& c : columns_) {
    nlohmann::json cj = {{"name", c.name},
                         {"type", c.categorical ? "categorical" : "numeric"},
                         {"dropped", c.dropped},
                         {"reason", c.drop_reason}};
    if (c.categorical) {
      cj["categories"] = c.kept;
      cj["fill_slot"] = c.fill_slot;
    } else {
      cj["fill"] = finite(c.fill, "fill value");
      cj["clip"] = c.clip ? nlohmann::json::array({finite(c.clip_lo, "clip bound"), finite(c.clip_hi, "clip bound")})
                          : nlohmann::json(nullptr);
      cj["shift"] = finite(c.shift, "shift");
      cj["scale"] = finite(c.scale, "scale");
    }
    cols.push_back(std::move(cj));
  }
  j["columns"] = std::move(cols);
  return j;
}

Preprocessor Preprocessor::from_json(const nlohmann::json& j) {
  try {
    DEFT_CHECK(j.is_object() && j.value("format", "") == kFormat, "preprocessor: not a deft preprocessor JSON object");
    DEFT_CHECK(j.at("version").get<int>() == kVersion, "preprocessor: unsupported version {}",
               j.at("version").dump());
    Preprocessor p(PreprocessOptions::from_json(j.at("options")),
                   j.contains("schema") ? TableSchema::from_json(j.at("schema")) : TableSchema{});
    const auto kind = j.at("kind").get<std::string>();
    if (kind == "image") {
      const auto& im = j.at("image");
      p.kind_ = Kind::Image;
      p.image_.chw = im.at("shape").get<Shape>();
      p.image_.pixel_scale = im.at("pixel_scale").get<double>();
      p.image_.mean = im.at("mean").get<std::vector<double>>();
      p.image_.std = im.at("std").get<std::vector<double>>();
      DEFT_CHECK(p.image_.chw.size() == 3 && p.image_.chw[0] > 0 && p.image_.chw[1] > 0 && p.image_.chw[2] > 0 &&
                     p.image_.mean.size() == static_cast<size_t>(p.image_.chw[0]) &&
                     p.image_.std.size() == p.image_.mean.size(),
                 "preprocessor: inconsistent image statistics");
      for (double s : p.image_.std) DEFT_CHECK(s > 0, "preprocessor: channel std must be positive, got {}", s);
    } else if (kind == "table") {
      p.kind_ = Kind::Table;
      for (const auto& cj : j.at("columns")) {
        Column c;
        c.name = cj.at("name").get<std::string>();
        const auto type = cj.at("type").get<std::string>();
        DEFT_CHECK(type == "numeric" || type == "categorical", "preprocessor: unknown column type \"{}\"", type);
        c.categorical = type == "categorical";
        c.dropped = cj.at("dropped").get<bool>();
        c.drop_reason = cj.at("reason").get<std::string>();
        if (c.categorical) {
          c.kept = cj.at("categories").get<std::vector<std::string>>();
          c.fill_slot = cj.at("fill_slot").get<int64_t>();
          DEFT_CHECK(c.fill_slot >= 0 && c.fill_slot <= static_cast<int64_t>(c.kept.size()),
                     "preprocessor: column \"{}\": fill slot {} out of range", c.name, c.fill_slot);
        } else {
          c.fill = cj.at("fill").get<double>();
          if (!cj.at("clip").is_null()) {
            c.clip = true;
            c.clip_lo = cj.at("clip").at(0).get<double>();
            c.clip_hi = cj.at("clip").at(1).get<double>();
          }
          c.shift = cj.at("shift").get<double>();
          c.scale = cj.at("scale").get<double>();
          DEFT_CHECK(c.scale != 0, "preprocessor: column \"{}\": scale 0", c.name);
        }
        p.columns_.push_back(std::move(c));
      }
      const bool any_categorical =
          std::any_of(p.columns_.begin(), p.columns_.end(), [](const Column& c) { return c.categorical; });
      DEFT_CHECK(!any_categorical || p.schema_.features.size() == p.columns_.size(),
                 "preprocessor: {} columns but a schema of {}", p.columns_.size(), p.schema_.features.size());
    } else {
      fail<>("preprocessor: unknown kind \"{}\"", kind);
    }
    p.derive();
    return p;
  } catch (const nlohmann::json::exception& e) {
    fail<>("preprocessor: malformed JSON: {}", e.what());
  }
}

}  // namespace deft::data
