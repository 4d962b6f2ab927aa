// make_sampler, the random and grid samplers, and the helpers every sampler shares.
#include "deft/tune/sampler.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>

#include "deft/tensor/config_reader.h"
#include "deft/tensor/error.h"
#include "deft/tune/sobol.h"

namespace deft::tune {

using json = nlohmann::json;

namespace detail {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

uint64_t stream_seed(uint64_t seed, int64_t number, const std::string& salt) {
  return splitmix64(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(number)) ^ fnv1a(salt));
}

double Rng::uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

double Rng::normal() {
  // Box-Muller; 1 - uniform() is in (0, 1], so the log is finite.
  const double u1 = 1.0 - uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

uint64_t Rng::below(uint64_t n) {
  // Rejection keeps the draw exactly uniform.
  const uint64_t limit = ~uint64_t{0} - (~uint64_t{0} % n);
  uint64_t x = engine_();
  while (x >= limit) x = engine_();
  return x % n;
}

double from_unit(const Distribution& d, double u) {
  u = std::clamp(u, 0.0, std::nextafter(1.0, 0.0));
  if (d.kind == Distribution::Kind::Categorical) {
    const auto n = static_cast<double>(d.choices.size());
    return std::min(std::floor(u * n), n - 1);
  }
  if (d.single()) return d.low;
  if (d.step > 0 && !d.log) {
    const double n = std::round((d.high - d.low) / d.step) + 1;
    const double k = std::min(std::floor(u * n), n - 1);
    return std::min(d.low + k * d.step, d.high);
  }
  if (d.log) {
    // Log ints as Optuna: log-uniform over [low - step/2, high + step/2], then rounded.
    const double half = d.step / 2;
    const double lo = std::log(d.low - half), hi = std::log(d.high + half);
    const double v = std::exp(lo + u * (hi - lo));
    if (d.step > 0) return std::clamp(d.low + std::round((v - d.low) / d.step) * d.step, d.low, d.high);
    return std::clamp(v, d.low, d.high);
  }
  return std::clamp(d.low + u * (d.high - d.low), d.low, d.high);
}

SearchSpace intersection_search_space(const StudyView& view, bool include_pruned) {
  SearchSpace space;
  bool first = true;
  for (const TrialRecord& t : view.trials) {
    if (t.state != TrialState::Complete && !(include_pruned && t.state == TrialState::Pruned)) continue;
    if (first) {
      space = t.distributions;
      first = false;
      continue;
    }
    for (auto it = space.begin(); it != space.end();) {
      auto found = t.distributions.find(it->first);
      it = (found == t.distributions.end() || !(found->second == it->second)) ? space.erase(it) : std::next(it);
    }
  }
  std::erase_if(space, [](const auto& entry) { return entry.second.single(); });
  return space;
}

namespace {

class RandomSampler final : public Sampler {
 public:
  explicit RandomSampler(uint64_t seed) : seed_(seed) {}
  std::string name() const override { return "random"; }
  double sample_independent(const StudyView&, const TrialRecord& trial, const std::string& param,
                            const Distribution& d) override {
    Rng rng(stream_seed(seed_, trial.number, param));
    return from_unit(d, rng.uniform());
  }

 private:
  uint64_t seed_;
};

// The grid is the product of the listed values, parameters in name order; point p is the
// mixed-radix number whose digits index each parameter's values. Trial k takes
// order_[k mod size], order_ a seeded shuffle of 0..size-1.
class GridSampler final : public Sampler {
 public:
  GridSampler(std::map<std::string, std::vector<json>> grid, uint64_t seed) : grid_(std::move(grid)) {
    size_t size = 1;
    for (const auto& [param, values] : grid_) {
      DEFT_CHECK(size <= kMaxPoints / values.size(), "grid sampler: the grid has more than {} points", kMaxPoints);
      size *= values.size();
    }
    order_.resize(size);
    std::iota(order_.begin(), order_.end(), size_t{0});
    Rng rng(stream_seed(seed, -1, "grid"));
    for (size_t i = size; i > 1; --i) std::swap(order_[i - 1], order_[rng.below(i)]);
  }
  std::string name() const override { return "grid"; }
  double sample_independent(const StudyView&, const TrialRecord& trial, const std::string& param,
                            const Distribution& d) override {
    auto it = grid_.find(param);
    if (it == grid_.end()) {
      std::string names;
      for (const auto& entry : grid_) names += (names.empty() ? "" : ", ") + entry.first;
      fail("grid sampler: parameter '{}' is not in the grid's search_space (it has {})", param, names);
    }
    const auto number = static_cast<size_t>(std::max<int64_t>(trial.number, 0));
    size_t point = order_[number % order_.size()];
    // Digits in name order, the last name varying fastest.
    size_t digit = 0;
    for (auto g = grid_.rbegin(); g != grid_.rend(); ++g) {
      digit = point % g->second.size();
      point /= g->second.size();
      if (g->first == param) break;
    }
    try {
      return d.internal(it->second[digit]);
    } catch (const InputError& e) {
      fail("grid sampler: parameter '{}': {}", param, e.what());
    }
  }
  size_t size() const { return order_.size(); }

 private:
  static constexpr size_t kMaxPoints = size_t{1} << 26;
  std::map<std::string, std::vector<json>> grid_;
  std::vector<size_t> order_;
};

}  // namespace

std::unique_ptr<Sampler> make_random_sampler(uint64_t seed) { return std::make_unique<RandomSampler>(seed); }

std::unique_ptr<Sampler> make_grid_sampler(const json& options) {
  ConfigReader r("sampler grid", options);
  const auto seed = static_cast<uint64_t>(r.integer("seed", 0));
  const json* space = r.raw("search_space");
  r.finish();
  DEFT_CHECK(space && space->is_object() && !space->empty(),
             "sampler grid: search_space must be an object {{name: [values...]}}, got {}",
             space ? space->dump() : "nothing");
  std::map<std::string, std::vector<json>> grid;
  for (const auto& [param, values] : space->items()) {
    DEFT_CHECK(values.is_array() && !values.empty(),
               "sampler grid: search_space['{}'] must be a non-empty array of values, got {}", param, values.dump());
    grid[param] = values.get<std::vector<json>>();
  }
  return std::make_unique<GridSampler>(std::move(grid), seed);
}

}  // namespace detail

std::unique_ptr<Sampler> make_sampler(const std::string& name, const json& options) {
  if (name == "random") {
    ConfigReader r("sampler random", options);
    const auto seed = static_cast<uint64_t>(r.integer("seed", 0));
    r.finish();
    return detail::make_random_sampler(seed);
  }
  if (name == "grid") return detail::make_grid_sampler(options);
  if (name == "sobol" || name == "qmc") return detail::make_sobol_sampler(options);
  if (name == "tpe") return detail::make_tpe_sampler(options);
  fail("sampler '{}' is not one of random, grid, sobol, qmc, tpe", name);
}

}  // namespace deft::tune
