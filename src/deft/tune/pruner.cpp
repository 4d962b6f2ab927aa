// Pruners (none, median/percentile, successive halving, Hyperband) and Pareto ranking.
// The algorithms follow Optuna 3.1's MedianPruner/PercentilePruner,
// SuccessiveHalvingPruner and HyperbandPruner.
#include "deft/tune/pruner.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "deft/tensor/config_reader.h"
#include "deft/tensor/error.h"

namespace deft::tune {

using json = nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool any_nan(const std::vector<double>& v) {
  return std::any_of(v.begin(), v.end(), [](double x) { return std::isnan(x); });
}

// Value in "smaller is better" form.
double minimized(double v, Direction d) { return d == Direction::Maximize ? -v : v; }

// Crowding distance of each member of one front (values already minimized).
std::vector<double> crowding_distance(const std::vector<std::vector<double>>& front) {
  const size_t n = front.size();
  std::vector<double> dist(n, 0.0);
  if (n == 0) return dist;
  const size_t m = front[0].size();
  std::vector<size_t> idx(n);
  for (size_t k = 0; k < m; ++k) {
    for (size_t i = 0; i < n; ++i) idx[i] = i;
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return front[a][k] < front[b][k]; });
    const double span = front[idx[n - 1]][k] - front[idx[0]][k];
    dist[idx[0]] = dist[idx[n - 1]] = std::numeric_limits<double>::infinity();
    if (span <= 0) continue;
    for (size_t i = 1; i + 1 < n; ++i) dist[idx[i]] += (front[idx[i + 1]][k] - front[idx[i - 1]][k]) / span;
  }
  return dist;
}

// np.nanpercentile with linear interpolation; NaN when no finite value.
double nan_percentile(std::vector<double> v, double q) {
  std::erase_if(v, [](double x) { return std::isnan(x); });
  if (v.empty()) return kNaN;
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

std::vector<double> as_vector(const json& j) {
  if (j.is_array()) {
    std::vector<double> out;
    for (const auto& x : j) out.push_back(x.is_number() ? x.get<double>() : kNaN);
    return out;
  }
  return {j.is_number() ? j.get<double>() : kNaN};
}

json as_json(const std::vector<double>& v) {
  // JSON has no NaN; the caller only stores finite values (NaN prunes before).
  if (v.size() == 1) return v[0];
  return json(v);
}

class NopPruner final : public Pruner {
 public:
  std::string name() const override { return "none"; }
  bool prune(const StudyView&, const TrialRecord&, json&) override { return false; }
};

// Prunes when the trial's best intermediate value so far is worse than the percentile of
// the Complete trials' values at the same step (per objective; several objectives: when
// the percentile vector dominates the trial's vector of bests).
class PercentilePruner final : public Pruner {
 public:
  PercentilePruner(std::string name, double percentile, int64_t n_startup, int64_t n_warmup, int64_t interval)
      : name_(std::move(name)),
        percentile_(percentile),
        n_startup_(n_startup),
        n_warmup_(n_warmup),
        interval_(interval) {}
  std::string name() const override { return name_; }

  bool prune(const StudyView& view, const TrialRecord& trial, json&) override {
    std::vector<const TrialRecord*> completed;
    for (const TrialRecord& t : view.trials)
      if (t.state == TrialState::Complete && t.id != trial.id) completed.push_back(&t);
    if (completed.empty() || static_cast<int64_t>(completed.size()) < n_startup_) return false;
    if (trial.intermediate.empty()) return false;
    const int64_t step = trial.intermediate.rbegin()->first;
    if (step < n_warmup_) return false;
    // Only the first report at or after each pruning step n_warmup + k*interval is judged.
    const int64_t nearest_lower = (step - n_warmup_) / interval_ * interval_ + n_warmup_;
    int64_t second_last = -1;
    for (const auto& entry : trial.intermediate)
      if (entry.first != step) second_last = std::max(second_last, entry.first);
    if (second_last >= nearest_lower) return false;

    const size_t n_obj = view.directions.size();
    std::vector<double> best(n_obj, kNaN), pct(n_obj, kNaN);
    for (size_t k = 0; k < n_obj; ++k) {
      const Direction dir = view.directions[k];
      for (const auto& entry : trial.intermediate) {
        const double v = k < entry.second.size() ? entry.second[k] : kNaN;
        if (std::isnan(v)) continue;
        if (std::isnan(best[k]) || minimized(v, dir) < minimized(best[k], dir)) best[k] = v;
      }
      std::vector<double> others;
      for (const TrialRecord* t : completed) {
        auto it = t->intermediate.find(step);
        if (it != t->intermediate.end() && k < it->second.size()) others.push_back(it->second[k]);
      }
      pct[k] = nan_percentile(others, dir == Direction::Maximize ? 100 - percentile_ : percentile_);
    }
    if (any_nan(best)) return true;
    if (any_nan(pct)) return false;
    if (n_obj == 1) return minimized(best[0], view.directions[0]) > minimized(pct[0], view.directions[0]);
    return dominates(pct, best, view.directions);
  }

 private:
  std::string name_;
  double percentile_;
  int64_t n_startup_, n_warmup_, interval_;
};

std::string rung_key(int64_t rung) { return "completed_rung_" + std::to_string(rung); }

// True when `value` (one vector per objective) is in the top max(1, floor(n/eta)) of the
// n competing values (`competing` includes it). One objective: Optuna's comparison with the
// sorted values. Several: fewer than that many competitors are strictly better by
// (non-dominated rank, then larger crowding distance within the rank's front).
bool promotable(const std::vector<double>& value, const std::vector<std::vector<double>>& competing, int64_t eta,
                const std::vector<Direction>& dirs) {
  int64_t idx = static_cast<int64_t>(competing.size()) / eta - 1;
  if (idx < 0) idx = 0;
  if (dirs.size() == 1) {
    std::vector<double> sorted;
    for (const auto& c : competing) sorted.push_back(c.at(0));
    std::sort(sorted.begin(), sorted.end());
    if (dirs[0] == Direction::Maximize) return value[0] >= sorted[sorted.size() - 1 - static_cast<size_t>(idx)];
    return value[0] <= sorted[static_cast<size_t>(idx)];
  }
  const std::vector<int> ranks = pareto_ranks(competing, dirs);
  // The trial's own entry is the last one of `competing`.
  const size_t self = competing.size() - 1;
  std::vector<double> crowd(competing.size(), 0.0);
  const int max_rank = *std::max_element(ranks.begin(), ranks.end());
  for (int r = 0; r <= max_rank; ++r) {
    std::vector<size_t> members;
    std::vector<std::vector<double>> front;
    for (size_t i = 0; i < competing.size(); ++i) {
      if (ranks[i] != r) continue;
      members.push_back(i);
      std::vector<double> m(competing[i].size());
      for (size_t k = 0; k < m.size(); ++k) m[k] = minimized(competing[i][k], dirs[k]);
      front.push_back(std::move(m));
    }
    const std::vector<double> d = crowding_distance(front);
    for (size_t i = 0; i < members.size(); ++i) crowd[members[i]] = d[i];
  }
  int64_t better = 0;
  for (size_t i = 0; i < competing.size(); ++i) {
    if (i == self) continue;
    if (ranks[i] < ranks[self] || (ranks[i] == ranks[self] && crowd[i] > crowd[self])) ++better;
  }
  return better <= idx;
}

struct HalvingSettings {
  int64_t min_resource = 1;
  int64_t eta = 3;
  int64_t min_early_stopping_rate = 0;
  int64_t bootstrap_count = 0;
};

// Optuna's SuccessiveHalvingPruner.prune over the trials `same_group` accepts.
template <class SameGroup>
bool successive_halving(const HalvingSettings& s, const StudyView& view, const TrialRecord& trial, json& attrs_out,
                        SameGroup same_group) {
  if (trial.intermediate.empty()) return false;
  const auto& [step, value] = *trial.intermediate.rbegin();
  const auto has_rung = [&](int64_t r) {
    return trial.system_attrs.contains(rung_key(r)) || attrs_out.contains(rung_key(r));
  };
  int64_t rung = 0;
  while (has_rung(rung)) ++rung;
  while (true) {
    double promotion_step = static_cast<double>(s.min_resource);
    for (int64_t i = 0; i < s.min_early_stopping_rate + rung; ++i) promotion_step *= static_cast<double>(s.eta);
    if (static_cast<double>(step) < promotion_step) return false;
    if (value.empty() || any_nan(value)) return true;
    const std::string key = rung_key(rung);
    attrs_out[key] = as_json(value);
    std::vector<std::vector<double>> competing;
    for (const TrialRecord& t : view.trials) {
      if (t.id == trial.id || !same_group(t)) continue;
      auto it = t.system_attrs.find(key);
      if (it != t.system_attrs.end()) competing.push_back(as_vector(*it));
    }
    competing.push_back(value);
    for (const auto& c : competing)
      DEFT_CHECK(c.size() == value.size(), "pruner: '{}' of another trial has {} values, this trial reports {}", key,
                 c.size(), value.size());
    if (static_cast<int64_t>(competing.size()) <= s.bootstrap_count) return true;
    if (!promotable(value, competing, s.eta, view.directions)) return true;
    ++rung;
  }
}

class SuccessiveHalvingPruner final : public Pruner {
 public:
  explicit SuccessiveHalvingPruner(HalvingSettings s) : s_(s) {}
  std::string name() const override { return "asha"; }
  bool prune(const StudyView& view, const TrialRecord& trial, json& attrs_out) override {
    return successive_halving(s_, view, trial, attrs_out, [](const TrialRecord&) { return true; });
  }

 private:
  HalvingSettings s_;
};

uint32_t crc32(const std::string& s) {
  uint32_t c = 0xffffffffu;
  for (const unsigned char byte : s) {
    c ^= byte;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return c ^ 0xffffffffu;
}

// Brackets s = 0..n-1, bracket b an ASHA with min_early_stopping_rate b. A trial's bracket
// is crc32("<study>_<number>") mod the total budget, walked through the brackets' budgets
// ceil(n * eta^(n-1-b) / (n-b)), as Optuna's HyperbandPruner.
class HyperbandPruner final : public Pruner {
 public:
  HyperbandPruner(int64_t min_resource, int64_t max_resource, int64_t eta)
      : min_resource_(min_resource), eta_(eta) {
    n_brackets_ = 0;
    for (double r = static_cast<double>(min_resource); r <= static_cast<double>(max_resource);
         r *= static_cast<double>(eta))
      ++n_brackets_;
    for (int64_t b = 0; b < n_brackets_; ++b) {
      const int64_t s = n_brackets_ - 1 - b;
      double pow = 1;
      for (int64_t i = 0; i < s; ++i) pow *= static_cast<double>(eta);
      budgets_.push_back(static_cast<int64_t>(std::ceil(static_cast<double>(n_brackets_) * pow / static_cast<double>(s + 1))));
      total_budget_ += budgets_.back();
    }
  }
  std::string name() const override { return "hyperband"; }
  int64_t n_brackets() const { return n_brackets_; }

  int64_t bracket_of(const std::string& study, const TrialRecord& t) const {
    auto it = t.system_attrs.find("hyperband_bracket");
    if (it != t.system_attrs.end() && it->is_number_integer()) return it->get<int64_t>();
    int64_t n = static_cast<int64_t>(crc32(study + "_" + std::to_string(t.number)) % static_cast<uint32_t>(total_budget_));
    for (int64_t b = 0; b < n_brackets_; ++b) {
      n -= budgets_[static_cast<size_t>(b)];
      if (n < 0) return b;
    }
    return n_brackets_ - 1;
  }

  bool prune(const StudyView& view, const TrialRecord& trial, json& attrs_out) override {
    const int64_t bracket = bracket_of(view.name, trial);
    attrs_out["hyperband_bracket"] = bracket;
    HalvingSettings s;
    s.min_resource = min_resource_;
    s.eta = eta_;
    s.min_early_stopping_rate = bracket;
    return successive_halving(s, view, trial, attrs_out,
                              [&](const TrialRecord& t) { return bracket_of(view.name, t) == bracket; });
  }

 private:
  int64_t min_resource_, eta_;
  int64_t n_brackets_ = 0;
  std::vector<int64_t> budgets_;
  int64_t total_budget_ = 0;
};

}  // namespace

std::vector<int> pareto_ranks(const std::vector<std::vector<double>>& values, const std::vector<Direction>& dirs) {
  const size_t n = values.size();
  std::vector<int> rank(n, -1);
  size_t left = n;
  for (int r = 0; left > 0; ++r) {
    std::vector<size_t> front;
    for (size_t i = 0; i < n; ++i) {
      if (rank[i] >= 0) continue;
      bool dominated = false;
      for (size_t j = 0; j < n && !dominated; ++j)
        dominated = j != i && rank[j] < 0 && dominates(values[j], values[i], dirs);
      if (!dominated) front.push_back(i);
    }
    for (const size_t i : front) rank[i] = r;
    left -= front.size();
  }
  return rank;
}

bool dominates(const std::vector<double>& a, const std::vector<double>& b, const std::vector<Direction>& dirs) {
  DEFT_CHECK(a.size() == dirs.size() && b.size() == dirs.size(),
             "dominates: vectors of {} and {} values for {} objectives", a.size(), b.size(), dirs.size());
  bool better = false;
  for (size_t k = 0; k < dirs.size(); ++k) {
    const double x = minimized(a[k], dirs[k]), y = minimized(b[k], dirs[k]);
    if (!(x <= y)) return false;
    if (x < y) better = true;
  }
  return better;
}

std::unique_ptr<Pruner> make_pruner(const std::string& name, const json& options) {
  if (name == "none") {
    ConfigReader r("pruner none", options);
    r.finish();
    return std::make_unique<NopPruner>();
  }
  if (name == "median" || name == "percentile") {
    ConfigReader r("pruner " + name, options);
    const double percentile = r.number("percentile", 50.0);
    const int64_t n_startup = r.integer("n_startup_trials", 5);
    const int64_t n_warmup = r.integer("n_warmup_steps", 0);
    const int64_t interval = r.integer("interval_steps", 1);
    r.finish();
    DEFT_CHECK(percentile >= 0 && percentile <= 100, "pruner {}: percentile must be in [0, 100], got {}", name,
               percentile);
    DEFT_CHECK(n_startup >= 0, "pruner {}: n_startup_trials must be >= 0, got {}", name, n_startup);
    DEFT_CHECK(n_warmup >= 0, "pruner {}: n_warmup_steps must be >= 0, got {}", name, n_warmup);
    DEFT_CHECK(interval >= 1, "pruner {}: interval_steps must be >= 1, got {}", name, interval);
    return std::make_unique<PercentilePruner>(name, percentile, n_startup, n_warmup, interval);
  }
  if (name == "asha" || name == "successive_halving") {
    ConfigReader r("pruner " + name, options);
    HalvingSettings s;
    s.min_resource = r.integer("min_resource", 1);
    s.eta = r.integer("reduction_factor", 3);
    s.min_early_stopping_rate = r.integer("min_early_stopping_rate", 0);
    s.bootstrap_count = r.integer("bootstrap_count", 0);
    r.finish();
    DEFT_CHECK(s.min_resource >= 1, "pruner {}: min_resource must be >= 1, got {}", name, s.min_resource);
    DEFT_CHECK(s.eta >= 2, "pruner {}: reduction_factor must be >= 2, got {}", name, s.eta);
    DEFT_CHECK(s.min_early_stopping_rate >= 0, "pruner {}: min_early_stopping_rate must be >= 0, got {}", name,
               s.min_early_stopping_rate);
    DEFT_CHECK(s.bootstrap_count >= 0, "pruner {}: bootstrap_count must be >= 0, got {}", name, s.bootstrap_count);
    return std::make_unique<SuccessiveHalvingPruner>(s);
  }
  if (name == "hyperband") {
    ConfigReader r("pruner hyperband", options);
    const int64_t min_resource = r.integer("min_resource", 1);
    const int64_t max_resource = r.integer("max_resource");
    const int64_t eta = r.integer("reduction_factor", 3);
    r.finish();
    DEFT_CHECK(min_resource >= 1, "pruner hyperband: min_resource must be >= 1, got {}", min_resource);
    DEFT_CHECK(max_resource >= min_resource, "pruner hyperband: max_resource {} must be >= min_resource {}",
               max_resource, min_resource);
    DEFT_CHECK(eta >= 2, "pruner hyperband: reduction_factor must be >= 2, got {}", eta);
    return std::make_unique<HyperbandPruner>(min_resource, max_resource, eta);
  }
  fail("pruner '{}' is not one of none, median, percentile, asha, successive_halving, hyperband", name);
}

}  // namespace deft::tune
