#include "deft/data/augment.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>

#include "deft/tensor/parallel.h"

namespace deft::data {

namespace {

constexpr double kPi = 3.14159265358979323846;

uint64_t next_u64(Generator& g) {
  const uint64_t hi = g.next_u32();
  return (hi << 32) | g.next_u32();
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

bool bernoulli(Generator& g, double p) {
  if (p >= 1.0) return true;
  if (p <= 0.0) return false;
  return g.next_double() < p;
}

double uniform(Generator& g, double lo, double hi) { return lo + (hi - lo) * g.next_double(); }

// Uniform integer in [0, n).
int64_t randint(Generator& g, int64_t n) {
  if (n <= 1) return 0;
  return std::min<int64_t>(n - 1, static_cast<int64_t>(g.next_double() * static_cast<double>(n)));
}


void check_p(double p, const char* what) {
  DEFT_CHECK(p >= 0.0 && p <= 1.0, "{}: p must be in [0, 1], got {}", what, p);
}

}  // namespace

// ---- Augmentation::apply --------------------------------------------------------

Tensor Augmentation::apply(const Tensor& x, Generator& gen) const {
  DEFT_CHECK(x.defined() && x.dim() == 4, "augmentation: expected an image batch [N,C,H,W], got {}",
             x.defined() ? shape_str(x.shape()) : std::string("an undefined tensor"));
  DEFT_CHECK(x.dtype() == DType::Float32 || x.dtype() == DType::UInt8,
             "augmentation: expected float32 or uint8 pixels, got {}", dtype_name(x.dtype()));
  const Tensor src = x.contiguous_copy();
  const int64_t n = src.size(0);
  const ImageDims in{src.size(1), src.size(2), src.size(3)};
  const ImageDims out = output_dims(in);
  Tensor y = Tensor::empty({n, out.c, out.h, out.w}, DType::Float32);
  // One draw from the batch generator; every example's generator derives from
  // it and the example index only.
  const uint64_t base = next_u64(gen);
  const bool bytes = src.dtype() == DType::UInt8;
  const uint8_t* in_u8 = bytes ? src.data<uint8_t>() : nullptr;
  const float* in_f32 = bytes ? nullptr : src.data<float>();
  float* op = y.data<float>();
  const int64_t per_in = in.numel(), per_out = out.numel();
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(per_in, 1));
  parallel_for(0, n, grain, [&](int64_t b, int64_t e) {
    std::vector<float> scratch(bytes ? static_cast<size_t>(per_in) : 0);
    for (int64_t i = b; i < e; ++i) {
      const float* s = nullptr;
      if (bytes) {
        const uint8_t* u = in_u8 + i * per_in;
        for (int64_t k = 0; k < per_in; ++k) scratch[static_cast<size_t>(k)] = u[k];
        s = scratch.data();
      } else {
        s = in_f32 + i * per_in;
      }
      float* d = op + i * per_out;
      Generator g(splitmix64(base ^ splitmix64(static_cast<uint64_t>(i))));
      if (!apply_example(s, d, in, g)) std::memcpy(d, s, static_cast<size_t>(per_in) * sizeof(float));
    }
  });
  return y;
}

// ---- RandomCrop -------------------------------------------------------------------

RandomCrop::RandomCrop(int64_t padding, std::optional<ImageSize> size, double p)
    : padding_(padding), size_(size), p_(p) {
  DEFT_CHECK(padding >= 0 && padding <= 4096, "crop: padding must be in [0, 4096], got {}", padding);
  if (size) DEFT_CHECK(size->height > 0 && size->width > 0, "crop: size must be positive");
  check_p(p, "crop");
}

std::string RandomCrop::spec() const {
  std::string s = fmt::format("crop:{}", padding_);
  if (size_) s += fmt::format(":{}x{}", size_->height, size_->width);
  if (p_ != 1.0) s += fmt::format(":p={}", p_);
  return s;
}

ImageDims RandomCrop::output_dims(ImageDims in) const {
  if (!size_) return in;
  DEFT_CHECK(size_->height <= in.h + 2 * padding_ && size_->width <= in.w + 2 * padding_,
             "crop: size {}x{} is larger than the padded image {}x{}", size_->height, size_->width,
             in.h + 2 * padding_, in.w + 2 * padding_);
  return {in.c, size_->height, size_->width};
}

bool RandomCrop::apply_example(const float* src, float* dst, ImageDims in, Generator& gen) const {
  const ImageDims out = output_dims(in);
  const int64_t room_y = in.h + 2 * padding_ - out.h, room_x = in.w + 2 * padding_ - out.w;
  int64_t oy, ox;  // offset of the crop in the padded image
  if (bernoulli(gen, p_)) {
    oy = randint(gen, room_y + 1);
    ox = randint(gen, room_x + 1);
  } else {
    if (out.h == in.h && out.w == in.w) return false;
    oy = room_y / 2;
    ox = room_x / 2;
  }
  for (int64_t c = 0; c < in.c; ++c)
    for (int64_t y = 0; y < out.h; ++y) {
      float* drow = dst + (c * out.h + y) * out.w;
      const int64_t sy = oy + y - padding_;
      if (sy < 0 || sy >= in.h) {
        std::fill(drow, drow + out.w, 0.0f);
        continue;
      }
      const float* srow = src + (c * in.h + sy) * in.w;
      for (int64_t x = 0; x < out.w; ++x) {
        const int64_t sx = ox + x - padding_;
        drow[x] = sx >= 0 && sx < in.w ? srow[sx] : 0.0f;
      }
    }
  return true;
}

// ---- RandomHorizontalFlip -------------------------------------------------------------

RandomHorizontalFlip::RandomHorizontalFlip(double p) : p_(p) { check_p(p, "flip"); }

std::string RandomHorizontalFlip::spec() const { return fmt::format("flip:{}", p_); }

bool RandomHorizontalFlip::apply_example(const float* src, float* dst, ImageDims in, Generator& gen) const {
  if (!bernoulli(gen, p_)) return false;
  for (int64_t r = 0; r < in.c * in.h; ++r) {
    const float* s = src + r * in.w;
    float* d = dst + r * in.w;
    for (int64_t x = 0; x < in.w; ++x) d[x] = s[in.w - 1 - x];
  }
  return true;
}

// ---- RandomAffine ------------------------------------------------------------------------

RandomAffine::RandomAffine(double degrees, double translate, double p)
    : degrees_(degrees), translate_(translate), p_(p) {
  DEFT_CHECK(degrees >= 0.0 && degrees <= 180.0, "affine: degrees must be in [0, 180], got {}", degrees);
  DEFT_CHECK(translate >= 0.0 && translate < 1.0, "affine: translate must be in [0, 1), got {}", translate);
  check_p(p, "affine");
}

std::string RandomAffine::spec() const {
  std::string s = fmt::format("affine:{}:{}", degrees_, translate_);
  if (p_ != 1.0) s += fmt::format(":p={}", p_);
  return s;
}

void RandomAffine::warp(const float* src, float* dst, ImageDims dims, double degrees, double tx, double ty) {
  // Exact sines for multiples of 90° so quarter turns move pixels exactly.
  double cs, sn;
  const double q = degrees / 90.0;
  if (q == std::round(q)) {
    const int k = static_cast<int>(((static_cast<int64_t>(q) % 4) + 4) % 4);
    cs = k == 0 ? 1 : k == 2 ? -1 : 0;
    sn = k == 1 ? 1 : k == 3 ? -1 : 0;
  } else {
    cs = std::cos(degrees * kPi / 180.0);
    sn = std::sin(degrees * kPi / 180.0);
  }
  const double cx = (static_cast<double>(dims.w) - 1.0) / 2.0, cy = (static_cast<double>(dims.h) - 1.0) / 2.0;
  const int64_t w = dims.w, h = dims.h, plane = h * w;
  // Inverse map: output pixel -> source position. With y pointing down, a
  // counter-clockwise turn (as displayed) sends (dx, dy) to
  // (dx cos + dy sin, -dx sin + dy cos); its inverse is used here.
  for (int64_t y = 0; y < h; ++y) {
    const double dy = static_cast<double>(y) - cy - ty;
    const double row_x = cx - dy * sn, row_y = cy + dy * cs;
    for (int64_t x = 0; x < w; ++x) {
      const double dx = static_cast<double>(x) - cx - tx;
      const double sx = dx * cs + row_x, sy = dx * sn + row_y;
      const double fx0 = std::floor(sx), fy0 = std::floor(sy);
      const float ax = static_cast<float>(sx - fx0), ay = static_cast<float>(sy - fy0);
      const float w00 = (1 - ax) * (1 - ay), w01 = ax * (1 - ay), w10 = (1 - ax) * ay, w11 = ax * ay;
      float* out = dst + y * w + x;
      if (fx0 >= 0 && fx0 < static_cast<double>(w - 1) && fy0 >= 0 && fy0 < static_cast<double>(h - 1)) {
        // All four taps inside.
        const float* p = src + static_cast<int64_t>(fy0) * w + static_cast<int64_t>(fx0);
        for (int64_t c = 0; c < dims.c; ++c, p += plane)
          out[c * plane] = w00 * p[0] + w01 * p[1] + w10 * p[w] + w11 * p[w + 1];
        continue;
      }
      if (!(fx0 >= -1 && fx0 < static_cast<double>(w) && fy0 >= -1 && fy0 < static_cast<double>(h))) {
        for (int64_t c = 0; c < dims.c; ++c) out[c * plane] = 0.0f;  // entirely outside (or NaN): zero
        continue;
      }
      const int64_t x0 = static_cast<int64_t>(fx0), y0 = static_cast<int64_t>(fy0);
      const bool in_x0 = x0 >= 0, in_x1 = x0 + 1 < w, in_y0 = y0 >= 0, in_y1 = y0 + 1 < h;
      for (int64_t c = 0; c < dims.c; ++c) {
        const float* p = src + c * plane;
        float v = 0;
        if (in_y0 && in_x0) v += w00 * p[y0 * w + x0];
        if (in_y0 && in_x1) v += w01 * p[y0 * w + x0 + 1];
        if (in_y1 && in_x0) v += w10 * p[(y0 + 1) * w + x0];
        if (in_y1 && in_x1) v += w11 * p[(y0 + 1) * w + x0 + 1];
        out[c * plane] = v;
      }
    }
  }
}

bool RandomAffine::apply_example(const float* src, float* dst, ImageDims in, Generator& gen) const {
  if (!bernoulli(gen, p_)) return false;
  const double angle = uniform(gen, -degrees_, degrees_);
  const double tx = uniform(gen, -translate_, translate_) * static_cast<double>(in.w);
  const double ty = uniform(gen, -translate_, translate_) * static_cast<double>(in.h);
  warp(src, dst, in, angle, tx, ty);
  return true;
}

// ---- RandomErasing ---------------------------------------------------------------------------

RandomErasing::RandomErasing(double p, Range scale, Range ratio, bool random_fill)
    : p_(p), scale_(scale), ratio_(ratio), random_fill_(random_fill) {
  check_p(p, "erase");
  DEFT_CHECK(scale.lo > 0.0 && scale.lo <= scale.hi && scale.hi <= 1.0,
             "erase: scale must be LO-HI with 0 < LO <= HI <= 1, got {}-{}", scale.lo, scale.hi);
  DEFT_CHECK(ratio.lo > 0.0 && ratio.lo <= ratio.hi && std::isfinite(ratio.hi),
             "erase: ratio must be LO-HI with 0 < LO <= HI, got {}-{}", ratio.lo, ratio.hi);
}

std::string RandomErasing::spec() const {
  return fmt::format("erase:{}:{}-{}:{}-{}:{}", p_, scale_.lo, scale_.hi, ratio_.lo, ratio_.hi,
                     random_fill_ ? "random" : "0");
}

bool RandomErasing::apply_example(const float* src, float* dst, ImageDims in, Generator& gen) const {
  if (!bernoulli(gen, p_)) return false;
  const double area = static_cast<double>(in.h * in.w);
  const double log_lo = std::log(ratio_.lo), log_hi = std::log(ratio_.hi);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * uniform(gen, scale_.lo, scale_.hi);
    const double aspect = std::exp(uniform(gen, log_lo, log_hi));
    const int64_t eh = std::llround(std::sqrt(target * aspect));
    const int64_t ew = std::llround(std::sqrt(target / aspect));
    if (!(eh >= 1 && ew >= 1 && eh < in.h && ew < in.w)) continue;
    const int64_t top = randint(gen, in.h - eh + 1), left = randint(gen, in.w - ew + 1);
    std::memcpy(dst, src, static_cast<size_t>(in.numel()) * sizeof(float));
    for (int64_t c = 0; c < in.c; ++c)
      for (int64_t y = top; y < top + eh; ++y) {
        float* row = dst + (c * in.h + y) * in.w;
        for (int64_t x = left; x < left + ew; ++x)
          row[x] = random_fill_ ? 255.0f * unit_float(gen.next_u32()) : 0.0f;
      }
    return true;
  }
  return false;  // no rectangle fitted in 10 tries: unchanged, as in the paper
}

// ---- GaussianNoise ----------------------------------------------------------------------------

GaussianNoise::GaussianNoise(double stddev, double p) : std_(stddev), p_(p) {
  DEFT_CHECK(stddev >= 0.0 && std::isfinite(stddev), "noise: std must be >= 0, got {}", stddev);
  check_p(p, "noise");
}

std::string GaussianNoise::spec() const {
  std::string s = fmt::format("noise:{}", std_);
  if (p_ != 1.0) s += fmt::format(":p={}", p_);
  return s;
}

bool GaussianNoise::apply_example(const float* src, float* dst, ImageDims in, Generator& gen) const {
  if (!bernoulli(gen, p_)) return false;
  const int64_t n = in.numel();
  const int64_t blocks = (n + 3) / 4;
  const uint64_t first = gen.reserve(static_cast<uint64_t>(blocks));
  const uint64_t key = gen.seed();
  const float s = static_cast<float>(std_);
  for (int64_t b = 0; b < blocks; ++b) {
    const auto z = philox_normal4(first + static_cast<uint64_t>(b), key);
    for (int l = 0; l < 4 && b * 4 + l < n; ++l) {
      const int64_t k = b * 4 + l;
      dst[k] = std::clamp(src[k] + s * z[l], 0.0f, 255.0f);
    }
  }
  return true;
}

// ---- Compose ------------------------------------------------------------------------------------

Compose::Compose(std::vector<std::shared_ptr<const Augmentation>> transforms)
    : transforms_(std::move(transforms)) {
  for (const auto& t : transforms_) DEFT_CHECK(t != nullptr, "compose: null transform");
}

std::string Compose::spec() const {
  if (transforms_.empty()) return "none";
  std::string s;
  for (const auto& t : transforms_) {
    if (!s.empty()) s += ",";
    s += t->spec();
  }
  return s;
}

ImageDims Compose::output_dims(ImageDims in) const {
  for (const auto& t : transforms_) in = t->output_dims(in);
  return in;
}

bool Compose::apply_example(const float* src, float* dst, ImageDims in, Generator& gen) const {
  if (transforms_.empty()) return false;
  // Each transform gets its own stream, so one transform's draws never shift another's.
  std::vector<uint64_t> seeds(transforms_.size());
  for (uint64_t& s : seeds) s = next_u64(gen);
  int64_t largest = in.numel();
  ImageDims d = in;
  for (const auto& t : transforms_) {
    d = t->output_dims(d);
    largest = std::max(largest, d.numel());
  }
  std::vector<float> buf[2];
  const float* cur = src;
  bool changed = false;
  d = in;
  for (size_t k = 0; k < transforms_.size(); ++k) {
    const ImageDims nd = transforms_[k]->output_dims(d);
    const bool last = k + 1 == transforms_.size();
    float* target = nullptr;
    if (last) {
      target = dst;
    } else {
      std::vector<float>& b = buf[cur == buf[0].data() && !buf[0].empty() ? 1 : 0];
      if (b.empty()) b.resize(static_cast<size_t>(largest));
      target = b.data();
    }
    Generator g(seeds[k]);
    if (transforms_[k]->apply_example(cur, target, d, g)) {
      cur = target;
      changed = true;
    }
    d = nd;
  }
  if (!changed) return false;
  if (cur != dst) std::memcpy(dst, cur, static_cast<size_t>(d.numel()) * sizeof(float));
  return true;
}

// ---- parsing ---------------------------------------------------------------------------------------

namespace {

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) return out;
    start = p + 1;
  }
}

struct TokenParser {
  std::string token;

  [[noreturn]] void bad(const std::string& why) const { fail("augmentation spec '{}': {}", token, why); }

  double number(const std::string& key, const std::string& v) const {
    double x = 0;
    const std::string t = trim(v);
    const auto r = std::from_chars(t.data(), t.data() + t.size(), x);
    if (t.empty() || r.ec != std::errc() || r.ptr != t.data() + t.size() || !std::isfinite(x))
      bad(fmt::format("{} must be a number, got '{}'", key, v));
    return x;
  }
  int64_t integer(const std::string& key, const std::string& v) const {
    const double x = number(key, v);
    if (x != std::floor(x) || std::fabs(x) > 1e9)
      bad(fmt::format("{} must be a whole number, got '{}'", key, v));
    return static_cast<int64_t>(x);
  }
  RandomErasing::Range range(const std::string& key, const std::string& v) const {
    const size_t dash = v.find('-', 1);
    if (dash == std::string::npos) bad(fmt::format("{} must be a range LO-HI, got '{}'", key, v));
    return {number(key, v.substr(0, dash)), number(key, v.substr(dash + 1))};
  }
};

}  // namespace

std::shared_ptr<Augmentation> parse_augmentation(const std::string& spec) {
  std::vector<std::shared_ptr<const Augmentation>> transforms;
  const std::string whole = trim(spec);
  if (whole.empty() || whole == "none") return std::make_shared<Compose>(std::move(transforms));
  static const std::map<std::string, std::vector<std::string>> kParams = {
      {"crop", {"pad", "size", "p"}},
      {"flip", {"p"}},
      {"affine", {"degrees", "translate", "p"}},
      {"erase", {"p", "scale", "ratio", "fill"}},
      {"noise", {"std", "p"}}};
  for (const std::string& raw : split(whole, ',')) {
    TokenParser tp{trim(raw)};
    if (tp.token.empty()) fail("augmentation spec '{}': empty item (two commas in a row?)", spec);
    const std::vector<std::string> parts = split(tp.token, ':');
    std::string name = trim(parts[0]);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto known = kParams.find(name);
    if (known == kParams.end())
      tp.bad(fmt::format("unknown transform '{}' (known: crop, flip, affine, erase, noise)", name));
    const std::vector<std::string>& keys = known->second;
    std::map<std::string, std::string> args;
    size_t positional = 0;
    for (size_t i = 1; i < parts.size(); ++i) {
      const std::string a = trim(parts[i]);
      if (a.empty()) tp.bad("empty argument");
      const size_t eq = a.find('=');
      std::string key;
      std::string value;
      if (eq != std::string::npos) {
        key = trim(a.substr(0, eq));
        value = trim(a.substr(eq + 1));
        if (std::find(keys.begin(), keys.end(), key) == keys.end())
          tp.bad(fmt::format("{} has no parameter '{}' (it takes {})", name, key, fmt::join(keys, ", ")));
      } else {
        while (positional < keys.size() && args.count(keys[positional])) ++positional;
        if (positional >= keys.size())
          tp.bad(fmt::format("too many arguments for {} (it takes {})", name, fmt::join(keys, ", ")));
        key = keys[positional++];
        value = a;
      }
      if (!args.emplace(key, value).second) tp.bad(fmt::format("{} given twice", key));
    }
    auto get = [&](const std::string& k) -> const std::string* {
      const auto it = args.find(k);
      return it == args.end() ? nullptr : &it->second;
    };
    auto prob = [&](double dflt) { return get("p") ? tp.number("p", *get("p")) : dflt; };
    try {
      if (name == "crop") {
        if (!get("pad")) tp.bad("crop needs the padding in pixels, e.g. crop:4");
        std::optional<ImageSize> size;
        if (get("size")) size = parse_image_size(*get("size"));
        transforms.push_back(std::make_shared<RandomCrop>(tp.integer("pad", *get("pad")), size, prob(1.0)));
      } else if (name == "flip") {
        transforms.push_back(std::make_shared<RandomHorizontalFlip>(prob(0.5)));
      } else if (name == "affine") {
        if (!get("degrees")) tp.bad("affine needs the rotation range in degrees, e.g. affine:10:0.1");
        const double tr = get("translate") ? tp.number("translate", *get("translate")) : 0.0;
        transforms.push_back(
            std::make_shared<RandomAffine>(tp.number("degrees", *get("degrees")), tr, prob(1.0)));
      } else if (name == "erase") {
        RandomErasing::Range scale{0.02, 0.33}, ratio{0.3, 3.3};
        if (get("scale")) scale = tp.range("scale", *get("scale"));
        if (get("ratio")) ratio = tp.range("ratio", *get("ratio"));
        bool random_fill = false;
        if (const std::string* f = get("fill")) {
          if (*f == "random")
            random_fill = true;
          else if (*f != "0")
            tp.bad(fmt::format("fill must be 0 or random, got '{}'", *f));
        }
        transforms.push_back(std::make_shared<RandomErasing>(prob(0.5), scale, ratio, random_fill));
      } else if (name == "noise") {
        if (!get("std")) tp.bad("noise needs the standard deviation in pixel units, e.g. noise:5");
        transforms.push_back(std::make_shared<GaussianNoise>(tp.number("std", *get("std")), prob(1.0)));
      }
    } catch (const InputError& e) {
      const std::string msg = e.what();
      if (msg.rfind("augmentation spec", 0) == 0) throw;
      tp.bad(msg);
    }
  }
  return std::make_shared<Compose>(std::move(transforms));
}

BatchTransform make_image_transform(std::shared_ptr<const Augmentation> augmentation) {
  return [aug = std::move(augmentation)](Batch& batch, Generator& gen) {
    DEFT_CHECK(batch.x.defined() && batch.x.dim() == 4,
               "image transform: expected an image batch [N,C,H,W], got {}",
               batch.x.defined() ? shape_str(batch.x.shape()) : std::string("no features"));
    if (aug) {
      batch.x = aug->apply(batch.x, gen);  // converts uint8 on the fly
    } else if (batch.x.dtype() != DType::Float32) {
      batch.x = batch.x.to(DType::Float32);
    }
  };
}

}  // namespace deft::data
