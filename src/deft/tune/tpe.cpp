// The Tree-structured Parzen Estimator sampler, after Optuna 3.1's TPESampler:
// independent (one parameter at a time) or multivariate (joint over the intersection
// search space), Parzen estimators of truncated normals in the transformed (log) space,
// discrete values widened by a half step and rounded, categorical kernels with a prior.
//
// Observations: Complete trials by their values; Pruned ones by their last intermediate
// value, ranked after every Complete one and among themselves by (-step, value); with
// constant_liar, Running trials other than the current one as if they had the worst value.
// The best gamma(n) = min(ceil(0.1 n), 25) form `below` (l), the rest `above` (g); the
// candidate of n_ei_candidates draws from l with the largest log l(x) - log g(x) wins.
//
// Several objectives: Pruned and Running trials are left out (as Optuna); `below` takes
// whole non-dominated fronts and, from the front that does not fit, the members with the
// largest crowding distance (Optuna solves a hypervolume subset selection there). Every
// observation gets Optuna's default weights (Optuna weights the below group of a
// multi-objective study by hypervolume contribution).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "deft/tensor/config_reader.h"
#include "deft/tensor/error.h"
#include "deft/tune/pruner.h"
#include "deft/tune/sobol.h"

namespace deft::tune::detail {

using json = nlohmann::json;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kEps = 1e-12;

double norm_cdf(double x) { return 0.5 * std::erfc(-x / std::numbers::sqrt2); }

// Acklam's rational approximation, refined by one Halley step.
double norm_ppf(double p) {
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                                 1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                 6.680131188771972e+01, -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                 -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                 3.754408661907416e+00};
  p = std::clamp(p, 1e-300, 1.0 - 1e-16);
  double x;
  if (p < 0.02425) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - 0.02425) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  const double e = norm_cdf(x) - p;
  const double u = e * std::sqrt(2 * std::numbers::pi) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

// Mass of the standard normal in [a, b], computed in the tail it lies in.
double norm_mass(double a, double b) {
  if (a > 0) return norm_cdf(-a) - norm_cdf(-b);
  return norm_cdf(b) - norm_cdf(a);
}

double safe_log(double x) { return std::log(std::max(x, 1e-300)); }

double log_sum_exp(const std::vector<double>& v) {
  double m = -kInf;
  for (const double x : v) m = std::max(m, x);
  if (!std::isfinite(m)) return m;
  double s = 0;
  for (const double x : v) s += std::exp(x - m);
  return m + std::log(s);
}

std::vector<double> default_weights(size_t n) {
  std::vector<double> w(n, 1.0);
  if (n >= 25) {
    // np.linspace(1/n, 1, n - 25) for the oldest, then 25 ones.
    const size_t ramp = n - 25;
    const double first = 1.0 / static_cast<double>(n);
    for (size_t i = 0; i < ramp; ++i)
      w[i] = ramp == 1 ? first : first + (1.0 - first) * static_cast<double>(i) / static_cast<double>(ramp - 1);
  }
  return w;
}

int64_t default_gamma(size_t n) {
  return std::min<int64_t>(static_cast<int64_t>(std::ceil(0.1 * static_cast<double>(n))), 25);
}

struct TpeOptions {
  uint64_t seed = 0;
  int64_t n_startup_trials = 10;
  int64_t n_ei_candidates = 24;
  double prior_weight = 1.0;
  bool consider_magic_clip = true;
  bool consider_endpoints = false;
  bool multivariate = false;
  bool constant_liar = false;
  std::string startup = "random";
};

using Param = std::pair<std::string, Distribution>;

// One parameter's kernels: a truncated normal per component in the transformed space
// (numeric), or a probability vector per component (categorical). The last component is
// the prior.
struct Kernels {
  Distribution d;
  double lo = 0, hi = 0;  // transformed, widened by half a step for discrete values
  std::vector<double> mu, sigma, log_mass;
  std::vector<std::vector<double>> probs;
};

double transform(const Distribution& d, double x) { return d.log ? std::log(x) : x; }

class ParzenEstimator {
 public:
  // rows: one per observation, a value per parameter (all present), chronological.
  ParzenEstimator(const std::vector<Param>& space, const std::vector<std::vector<double>>& rows,
                  const TpeOptions& o) {
    const size_t n = rows.size();
    weights_ = default_weights(n);
    weights_.push_back(n == 0 ? 1.0 : o.prior_weight);
    double total = 0;
    for (const double w : weights_) total += w;
    for (double& w : weights_) w /= total;
    for (size_t j = 0; j < space.size(); ++j) {
      const Distribution& d = space[j].second;
      Kernels k;
      k.d = d;
      if (d.kind == Distribution::Kind::Categorical) {
        const size_t nc = d.choices.size();
        const double base = o.prior_weight / static_cast<double>(n + 1);
        for (size_t i = 0; i <= n; ++i) {
          std::vector<double> p(nc, i == n ? 1.0 : base);
          if (i < n) p[static_cast<size_t>(rows[i][j])] += 1.0;
          double s = 0;
          for (const double x : p) s += x;
          for (double& x : p) x = s > 0 ? x / s : 1.0 / static_cast<double>(nc);
          k.probs.push_back(std::move(p));
        }
      } else {
        double lo = d.low, hi = d.high;
        if (d.step > 0) {
          lo -= d.step / 2;
          hi += d.step / 2;
        }
        k.lo = transform(d, lo);
        k.hi = transform(d, hi);
        for (size_t i = 0; i < n; ++i) k.mu.push_back(transform(d, rows[i][j]));
        k.sigma = sigmas(k.mu, k.lo, k.hi, space.size(), o);
        k.mu.push_back(0.5 * (k.lo + k.hi));
        k.sigma.push_back(k.hi - k.lo);
        for (size_t i = 0; i < k.mu.size(); ++i)
          k.log_mass.push_back(safe_log(norm_mass((k.lo - k.mu[i]) / k.sigma[i], (k.hi - k.mu[i]) / k.sigma[i])));
      }
      kernels_.push_back(std::move(k));
    }
  }

  // One joint draw: a component by weight, then each parameter from that component.
  std::vector<double> sample(Rng& rng) const {
    double u = rng.uniform(), acc = 0;
    size_t c = weights_.size() - 1;
    for (size_t i = 0; i < weights_.size(); ++i) {
      acc += weights_[i];
      if (u < acc) {
        c = i;
        break;
      }
    }
    std::vector<double> x;
    for (const Kernels& k : kernels_) {
      if (k.d.kind == Distribution::Kind::Categorical) {
        double v = rng.uniform(), a = 0;
        size_t idx = k.probs[c].size() - 1;
        for (size_t i = 0; i < k.probs[c].size(); ++i) {
          a += k.probs[c][i];
          if (v < a) {
            idx = i;
            break;
          }
        }
        x.push_back(static_cast<double>(idx));
        continue;
      }
      const double alpha = (k.lo - k.mu[c]) / k.sigma[c], beta = (k.hi - k.mu[c]) / k.sigma[c];
      double z;
      if (alpha > 0) {  // sample the mirrored interval, where the mass is not lost to rounding
        const double pa = norm_cdf(-beta), pb = norm_cdf(-alpha);
        z = -norm_ppf(pa + rng.uniform() * (pb - pa));
      } else {
        const double pa = norm_cdf(alpha), pb = norm_cdf(beta);
        z = norm_ppf(pa + rng.uniform() * (pb - pa));
      }
      double v = k.mu[c] + k.sigma[c] * std::clamp(z, alpha, beta);
      v = std::clamp(v, k.lo, k.hi);
      if (k.d.log) v = std::exp(v);
      if (k.d.step > 0) v = k.d.low + std::round((v - k.d.low) / k.d.step) * k.d.step;
      x.push_back(std::clamp(v, k.d.low, k.d.high));
    }
    return x;
  }

  double log_pdf(const std::vector<double>& x) const {
    std::vector<double> per(weights_.size());
    for (size_t c = 0; c < weights_.size(); ++c) {
      double s = safe_log(weights_[c]);
      for (size_t j = 0; j < kernels_.size(); ++j) {
        const Kernels& k = kernels_[j];
        if (k.d.kind == Distribution::Kind::Categorical) {
          s += safe_log(k.probs[c][static_cast<size_t>(x[j])]);
        } else if (k.d.step > 0) {
          const double a = transform(k.d, x[j] - k.d.step / 2), b = transform(k.d, x[j] + k.d.step / 2);
          s += safe_log(norm_mass((a - k.mu[c]) / k.sigma[c], (b - k.mu[c]) / k.sigma[c])) - k.log_mass[c];
        } else {
          const double z = (transform(k.d, x[j]) - k.mu[c]) / k.sigma[c];
          s += -0.5 * z * z - 0.5 * std::log(2 * std::numbers::pi) - std::log(k.sigma[c]) - k.log_mass[c];
        }
      }
      per[c] = s;
    }
    return log_sum_exp(per);
  }

 private:
  static std::vector<double> sigmas(const std::vector<double>& mus, double lo, double hi, size_t n_params,
                                    const TpeOptions& o) {
    const size_t n = mus.size();
    std::vector<double> s(n);
    if (o.multivariate) {
      // Scott-like bandwidth of Optuna's multivariate mode.
      const double sigma = 0.2 * std::pow(static_cast<double>(std::max<size_t>(n, 1)),
                                          -1.0 / (static_cast<double>(n_params) + 4)) *
                           (hi - lo);
      std::fill(s.begin(), s.end(), sigma);
    } else {
      // Distance to the farther neighbour among the sorted observations plus the prior's mean.
      std::vector<double> with_prior = mus;
      with_prior.push_back(0.5 * (lo + hi));
      std::vector<size_t> order(with_prior.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return with_prior[a] < with_prior[b]; });
      std::vector<double> e;  // sorted with endpoints
      e.push_back(lo);
      for (const size_t i : order) e.push_back(with_prior[i]);
      e.push_back(hi);
      std::vector<double> sorted_sigma(order.size());
      for (size_t i = 0; i < order.size(); ++i) sorted_sigma[i] = std::max(e[i + 1] - e[i], e[i + 2] - e[i + 1]);
      if (!o.consider_endpoints && e.size() >= 4) {
        sorted_sigma.front() = e[2] - e[1];
        sorted_sigma.back() = e[e.size() - 2] - e[e.size() - 3];
      }
      for (size_t i = 0; i < order.size(); ++i)
        if (order[i] < n) s[order[i]] = sorted_sigma[i];
    }
    const double max_sigma = hi - lo;
    const double min_sigma =
        o.consider_magic_clip ? (hi - lo) / std::min(100.0, 1.0 + static_cast<double>(n + 1)) : kEps;
    for (double& x : s) x = std::clamp(x, min_sigma, max_sigma);
    return s;
  }

  std::vector<double> weights_;
  std::vector<Kernels> kernels_;
};

// A trial as TPE sees it: its loss key and the parameter values (NaN where missing).
struct Observation {
  double step_key = 0;        // -inf for Complete and Running, -step for Pruned
  std::vector<double> loss;   // minimized values (one per objective)
  std::vector<double> values; // one per requested parameter
};

class TpeSampler final : public Sampler {
 public:
  explicit TpeSampler(TpeOptions o)
      : o_(std::move(o)),
        random_(make_random_sampler(o_.seed)),
        sobol_(make_sobol_sampler(json{{"seed", o_.seed}, {"scramble", true}})) {}
  std::string name() const override { return "tpe"; }

  SearchSpace infer_relative_search_space(const StudyView& view, const TrialRecord&) override {
    if (o_.multivariate) return intersection_search_space(view, true);
    if (o_.startup == "sobol" && finished_count(view) < o_.n_startup_trials)
      return intersection_search_space(view, false);
    return {};
  }

  std::map<std::string, double> sample_relative(const StudyView& view, const TrialRecord& trial,
                                                const SearchSpace& space) override {
    if (space.empty()) return {};
    const std::vector<Param> params(space.begin(), space.end());
    std::vector<Observation> obs = observations(view, trial, params, /*skip_incomplete*/ true);
    if (static_cast<int64_t>(obs.size()) < o_.n_startup_trials) {
      if (o_.startup == "sobol") return sobol_->sample_relative(view, trial, space);
      return {};
    }
    Rng rng(stream_seed(o_.seed, trial.number, "tpe-relative"));
    const std::vector<double> best = choose(params, obs, rng);
    std::map<std::string, double> out;
    for (size_t j = 0; j < params.size(); ++j) out[params[j].first] = best[j];
    return out;
  }

  double sample_independent(const StudyView& view, const TrialRecord& trial, const std::string& param,
                            const Distribution& d) override {
    if (d.single()) return d.low;
    const std::vector<Param> params{{param, d}};
    std::vector<Observation> obs = observations(view, trial, params, o_.multivariate);
    if (static_cast<int64_t>(obs.size()) < o_.n_startup_trials)
      return random_->sample_independent(view, trial, param, d);
    Rng rng(stream_seed(o_.seed, trial.number, "tpe:" + param));
    return choose(params, obs, rng)[0];
  }

 private:
  static int64_t finished_count(const StudyView& view) {
    return std::count_if(view.trials.begin(), view.trials.end(), [](const TrialRecord& t) {
      return t.state == TrialState::Complete || t.state == TrialState::Pruned;
    });
  }

  // The value of `p` in t usable under d, NaN when absent or from another range.
  static double value_of(const TrialRecord& t, const Param& p) {
    auto it = t.params.find(p.first);
    if (it == t.params.end()) return kNaN;
    auto dist = t.distributions.find(p.first);
    const Distribution& d = p.second;
    if (dist != t.distributions.end() && dist->second == d) return it->second;
    if (d.kind != Distribution::Kind::Categorical && dist != t.distributions.end() && dist->second.kind == d.kind &&
        d.contains(it->second))
      return it->second;
    return kNaN;
  }

  std::vector<Observation> observations(const StudyView& view, const TrialRecord& trial,
                                        const std::vector<Param>& params, bool skip_incomplete) const {
    const size_t n_obj = view.directions.size();
    std::vector<Observation> out;
    for (const TrialRecord& t : view.trials) {
      if (t.id == trial.id || t.number == trial.number) continue;
      Observation o;
      if (t.state == TrialState::Complete) {
        if (t.values.size() != n_obj) continue;
        o.step_key = -kInf;
        for (size_t k = 0; k < n_obj; ++k) o.loss.push_back(view.maximize(k) ? -t.values[k] : t.values[k]);
      } else if (t.state == TrialState::Pruned && n_obj == 1) {
        if (t.intermediate.empty()) {
          o.step_key = kInf;
          o.loss = {0.0};
        } else {
          const auto& [step, v] = *t.intermediate.rbegin();
          o.step_key = -static_cast<double>(step);
          const double x = v.empty() ? kNaN : v[0];
          o.loss = {std::isnan(x) ? kInf : (view.maximize(0) ? -x : x)};
        }
      } else if (t.state == TrialState::Running && o_.constant_liar && n_obj == 1) {
        o.step_key = -kInf;
        o.loss = {kInf};
      } else {
        continue;
      }
      bool complete = true;
      for (const Param& p : params) {
        o.values.push_back(value_of(t, p));
        complete = complete && !std::isnan(o.values.back());
      }
      if (skip_incomplete && !complete) continue;
      out.push_back(std::move(o));
    }
    return out;
  }

  // Indices (chronological) of the best gamma(n) observations, and of the rest.
  static std::pair<std::vector<size_t>, std::vector<size_t>> split(const std::vector<Observation>& obs) {
    const size_t n = obs.size();
    const auto n_below = static_cast<size_t>(default_gamma(n));
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = i;
    std::vector<bool> in_below(n, false);
    if (n > 0 && obs[0].loss.size() > 1) {
      std::vector<std::vector<double>> losses;
      for (const Observation& o : obs) losses.push_back(o.loss);
      const std::vector<Direction> dirs(obs[0].loss.size(), Direction::Minimize);
      const std::vector<int> rank = pareto_ranks(losses, dirs);
      size_t taken = 0;
      for (int r = 0; taken < n_below; ++r) {
        std::vector<size_t> front;
        for (size_t i = 0; i < n; ++i)
          if (rank[i] == r) front.push_back(i);
        if (taken + front.size() <= n_below) {
          for (const size_t i : front) in_below[i] = true;
          taken += front.size();
          continue;
        }
        // The front that does not fit: the most isolated members first.
        const std::vector<double> crowd = crowding(front, losses);
        std::vector<size_t> pick(front.size());
        for (size_t i = 0; i < pick.size(); ++i) pick[i] = i;
        std::stable_sort(pick.begin(), pick.end(), [&](size_t a, size_t b) { return crowd[a] > crowd[b]; });
        for (size_t i = 0; taken < n_below; ++i, ++taken) in_below[front[pick[i]]] = true;
      }
    } else {
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        if (obs[a].step_key != obs[b].step_key) return obs[a].step_key < obs[b].step_key;
        return obs[a].loss[0] < obs[b].loss[0];
      });
      for (size_t i = 0; i < std::min(n_below, n); ++i) in_below[order[i]] = true;
    }
    std::pair<std::vector<size_t>, std::vector<size_t>> out;
    for (size_t i = 0; i < n; ++i) (in_below[i] ? out.first : out.second).push_back(i);
    return out;
  }

  static std::vector<double> crowding(const std::vector<size_t>& front, const std::vector<std::vector<double>>& losses) {
    std::vector<double> dist(front.size(), 0.0);
    const size_t m = losses[front[0]].size();
    std::vector<size_t> idx(front.size());
    for (size_t k = 0; k < m; ++k) {
      for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
      std::stable_sort(idx.begin(), idx.end(),
                       [&](size_t a, size_t b) { return losses[front[a]][k] < losses[front[b]][k]; });
      const double span = losses[front[idx.back()]][k] - losses[front[idx.front()]][k];
      dist[idx.front()] = dist[idx.back()] = kInf;
      if (!(span > 0)) continue;
      for (size_t i = 1; i + 1 < idx.size(); ++i)
        dist[idx[i]] += (losses[front[idx[i + 1]]][k] - losses[front[idx[i - 1]]][k]) / span;
    }
    return dist;
  }

  std::vector<double> choose(const std::vector<Param>& params, const std::vector<Observation>& obs, Rng& rng) const {
    const auto [below_idx, above_idx] = split(obs);
    const auto rows_of = [&](const std::vector<size_t>& idx) {
      std::vector<std::vector<double>> rows;
      for (const size_t i : idx) {
        const bool all = std::none_of(obs[i].values.begin(), obs[i].values.end(), [](double v) { return std::isnan(v); });
        if (all) rows.push_back(obs[i].values);
      }
      return rows;
    };
    const ParzenEstimator below(params, rows_of(below_idx), o_);
    const ParzenEstimator above(params, rows_of(above_idx), o_);
    std::vector<double> best;
    double best_score = -kInf;
    for (int64_t i = 0; i < o_.n_ei_candidates; ++i) {
      std::vector<double> x = below.sample(rng);
      const double score = below.log_pdf(x) - above.log_pdf(x);
      if (best.empty() || score > best_score) {
        best_score = score;
        best = std::move(x);
      }
    }
    return best;
  }

  TpeOptions o_;
  std::unique_ptr<Sampler> random_;
  std::unique_ptr<Sampler> sobol_;
};

}  // namespace

std::unique_ptr<Sampler> make_tpe_sampler(const json& options) {
  ConfigReader r("sampler tpe", options);
  TpeOptions o;
  o.seed = static_cast<uint64_t>(r.integer("seed", 0));
  o.n_startup_trials = r.integer("n_startup_trials", o.n_startup_trials);
  o.n_ei_candidates = r.integer("n_ei_candidates", o.n_ei_candidates);
  const std::string gamma = r.string("gamma", "default");
  o.prior_weight = r.number("prior_weight", o.prior_weight);
  o.consider_magic_clip = r.boolean("consider_magic_clip", o.consider_magic_clip);
  o.consider_endpoints = r.boolean("consider_endpoints", o.consider_endpoints);
  o.multivariate = r.boolean("multivariate", o.multivariate);
  o.constant_liar = r.boolean("constant_liar", o.constant_liar);
  o.startup = r.string("startup", o.startup);
  r.finish();
  DEFT_CHECK(gamma == "default", "sampler tpe: gamma '{}' is not supported (only \"default\")", gamma);
  DEFT_CHECK(o.n_startup_trials >= 0, "sampler tpe: n_startup_trials must be >= 0, got {}", o.n_startup_trials);
  DEFT_CHECK(o.n_ei_candidates >= 1, "sampler tpe: n_ei_candidates must be >= 1, got {}", o.n_ei_candidates);
  DEFT_CHECK(o.prior_weight > 0 && std::isfinite(o.prior_weight), "sampler tpe: prior_weight must be > 0, got {}",
             o.prior_weight);
  DEFT_CHECK(o.startup == "random" || o.startup == "sobol", "sampler tpe: startup '{}' is not random or sobol",
             o.startup);
  return std::make_unique<TpeSampler>(std::move(o));
}

}  // namespace deft::tune::detail
