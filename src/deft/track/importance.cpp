#include "deft/track/importance.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include <fmt/format.h>

namespace deft::track {

namespace {

// splitmix64: the same numbers on every platform and standard library.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
};

struct Leaf {
  std::vector<double> lo, hi;  // the leaf's box, inside the search bounds
  double value = 0;
};

// One CART regression tree, kept only as its leaves' boxes and values: all fANOVA needs.
class RegressionTree {
 public:
  RegressionTree(const std::vector<std::vector<double>>& x, const std::vector<double>& y, std::vector<size_t> rows,
                 const std::vector<std::pair<double, double>>& bounds, int max_depth, Rng& rng)
      : x_(x), y_(y), max_depth_(max_depth), rng_(rng) {
    std::vector<double> lo(bounds.size()), hi(bounds.size());
    for (size_t f = 0; f < bounds.size(); ++f) {
      lo[f] = bounds[f].first;
      hi[f] = bounds[f].second;
    }
    grow(rows, 0, lo, hi);
  }
  const std::vector<Leaf>& leaves() const { return leaves_; }

 private:
  void grow(std::vector<size_t>& rows, int depth, std::vector<double>& lo, std::vector<double>& hi) {
    const size_t n = rows.size();
    double sum = 0, mn = INFINITY, mx = -INFINITY;
    for (size_t r : rows) {
      sum += y_[r];
      mn = std::min(mn, y_[r]);
      mx = std::max(mx, y_[r]);
    }
    const double mean = sum / static_cast<double>(n);
    if (n < 2 || depth >= max_depth_ || mx - mn <= 1e-12 * std::max(1.0, std::abs(mean))) {
      leaves_.push_back({lo, hi, mean});
      return;
    }
    // The split maximising sum_L^2/n_L + sum_R^2/n_R (the largest drop in squared error);
    // features in a random order so ties go to a random one, as scikit-learn does.
    const size_t nf = lo.size();
    std::vector<size_t> order(nf);
    std::iota(order.begin(), order.end(), size_t{0});
    for (size_t i = nf; i > 1; --i) std::swap(order[i - 1], order[rng_.below(i)]);
    double best = -INFINITY, threshold = 0;
    size_t best_f = nf;
    std::vector<size_t> sorted = rows;
    for (size_t f : order) {
      std::sort(sorted.begin(), sorted.end(), [&](size_t a, size_t b) { return x_[a][f] < x_[b][f]; });
      if (x_[sorted.front()][f] == x_[sorted.back()][f]) continue;
      double left = 0;
      for (size_t i = 0; i + 1 < n; ++i) {
        left += y_[sorted[i]];
        const double a = x_[sorted[i]][f], b = x_[sorted[i + 1]][f];
        if (a == b) continue;
        const double nl = static_cast<double>(i + 1), nr = static_cast<double>(n - i - 1);
        const double score = left * left / nl + (sum - left) * (sum - left) / nr;
        if (best_f == nf || score > best + 1e-12 * std::abs(best)) {
          best = score;
          best_f = f;
          threshold = a + (b - a) / 2;
          if (threshold >= b) threshold = a;
        }
      }
    }
    if (best_f == nf) {  // every feature constant here
      leaves_.push_back({lo, hi, mean});
      return;
    }
    std::vector<size_t> l, r;
    for (size_t row : rows) (x_[row][best_f] <= threshold ? l : r).push_back(row);
    rows.clear();
    rows.shrink_to_fit();
    const double old_hi = hi[best_f], old_lo = lo[best_f];
    hi[best_f] = std::clamp(threshold, old_lo, old_hi);
    grow(l, depth + 1, lo, hi);
    hi[best_f] = old_hi;
    lo[best_f] = std::clamp(threshold, old_lo, old_hi);
    grow(r, depth + 1, lo, hi);
    lo[best_f] = old_lo;
  }

  const std::vector<std::vector<double>>& x_;
  const std::vector<double>& y_;
  int max_depth_;
  Rng& rng_;
  std::vector<Leaf> leaves_;
};

// Total variance of the tree under the uniform measure on the bounds, and each
// feature's marginal variance, exactly.
void tree_variances(const std::vector<Leaf>& leaves, const std::vector<std::pair<double, double>>& bounds, double& total,
                    std::vector<double>& marginal) {
  const size_t nf = bounds.size(), nl = leaves.size();
  // share[l][k]: the fraction of dimension k's range the leaf covers
  std::vector<std::vector<double>> share(nl, std::vector<double>(nf));
  std::vector<double> weight(nl, 1.0);
  for (size_t l = 0; l < nl; ++l)
    for (size_t k = 0; k < nf; ++k) {
      const double range = bounds[k].second - bounds[k].first;
      share[l][k] = range > 0 ? std::max(0.0, leaves[l].hi[k] - leaves[l].lo[k]) / range : 1.0;
      weight[l] *= share[l][k];
    }
  double mean = 0;
  for (size_t l = 0; l < nl; ++l) mean += weight[l] * leaves[l].value;
  total = 0;
  for (size_t l = 0; l < nl; ++l) total += weight[l] * (leaves[l].value - mean) * (leaves[l].value - mean);
  marginal.assign(nf, 0);
  for (size_t j = 0; j < nf; ++j) {
    const double range = bounds[j].second - bounds[j].first;
    if (!(range > 0)) continue;
    // The marginal as a function of x_j is piecewise constant between leaf edges: a sweep
    // adds each leaf's value times its share of the other dimensions over its interval.
    std::vector<std::pair<double, double>> events;  // (position, change)
    events.reserve(2 * nl);
    for (size_t l = 0; l < nl; ++l) {
      double other = 1;
      for (size_t k = 0; k < nf; ++k)
        if (k != j) other *= share[l][k];
      const double c = other * leaves[l].value;
      if (c == 0 || !(leaves[l].hi[j] > leaves[l].lo[j])) continue;
      events.emplace_back(leaves[l].lo[j], c);
      events.emplace_back(leaves[l].hi[j], -c);
    }
    std::sort(events.begin(), events.end(), [](auto& a, auto& b) { return a.first < b.first; });
    // Leaves with value 0 were dropped above; a region covered by no event has marginal 0.
    double f = 0, var = 0, prev = bounds[j].first;
    for (size_t i = 0; i < events.size();) {
      const double pos = events[i].first;
      var += (pos - prev) / range * (f - mean) * (f - mean);
      while (i < events.size() && events[i].first == pos) f += events[i++].second;
      prev = pos;
    }
    var += (bounds[j].second - prev) / range * (f - mean) * (f - mean);
    marginal[j] = std::max(0.0, var);
  }
}

struct Prepared {
  std::vector<std::string> names;          // every parameter in the intersection
  std::vector<size_t> varying;             // indices into names that are not single-valued
  std::vector<std::vector<double>> x;      // rows: trials; columns: varying params
  std::vector<double> y;
  std::vector<std::pair<double, double>> bounds;
};

std::pair<double, double> transformed_bounds(const Distribution& d) {
  switch (d.kind) {
    case Distribution::Kind::Categorical:
      return {-0.5, static_cast<double>(d.choices.size()) - 0.5};
    case Distribution::Kind::Int: {
      const double half = 0.5 * std::max(1.0, d.step);
      if (d.log) return {std::log(std::max(d.low - half, 0.5 * d.low)), std::log(d.high + half)};
      return {d.low - half, d.high + half};
    }
    case Distribution::Kind::Float:
      break;
  }
  if (d.log) return {std::log(d.low), std::log(d.high)};
  const double half = d.step > 0 ? d.step / 2 : 0;
  return {d.low - half, d.high + half};
}

double transformed(const Distribution& d, double internal) {
  return d.kind != Distribution::Kind::Categorical && d.log ? std::log(internal) : internal;
}

Prepared prepare(const std::vector<TrialRecord>& trials, const ImportanceOptions& o) {
  Prepared p;
  std::vector<const TrialRecord*> use;
  for (const auto& t : trials)
    if (t.state == TrialState::Complete && t.values.size() > o.objective && std::isfinite(t.values[o.objective]))
      use.push_back(&t);
  if (use.empty()) return p;
  // the intersection search space: names every trial has, with one distribution
  std::map<std::string, Distribution> space = use[0]->distributions;
  for (const TrialRecord* t : use)
    for (auto it = space.begin(); it != space.end();) {
      auto d = t->distributions.find(it->first);
      if (d == t->distributions.end() || !(d->second == it->second) || !t->params.count(it->first)) it = space.erase(it);
      else ++it;
    }
  for (auto& [name, d] : space) {
    p.names.push_back(name);
    if (!d.single()) {
      p.varying.push_back(p.names.size() - 1);
      p.bounds.push_back(transformed_bounds(d));
    }
  }
  for (const TrialRecord* t : use) {
    std::vector<double> row;
    for (size_t v : p.varying) {
      const Distribution& d = space.at(p.names[v]);
      row.push_back(transformed(d, t->params.at(p.names[v])));
    }
    p.x.push_back(std::move(row));
    p.y.push_back(t->values[o.objective]);
  }
  return p;
}

}  // namespace

std::string importance_method(const ImportanceOptions& o) { return fmt::format("fANOVA (random forest, {} trees)", o.n_trees); }

std::vector<double> fanova_importances(const std::vector<std::vector<double>>& x, const std::vector<double>& y,
                                       const std::vector<std::pair<double, double>>& bounds, const ImportanceOptions& o,
                                       std::vector<double>* stddev) {
  const size_t nf = bounds.size(), n = std::min(x.size(), y.size());
  std::vector<double> mean(nf, 0), sq(nf, 0);
  if (stddev) stddev->assign(nf, 0);
  if (n < 2 || nf == 0) return mean;
  Rng rng{o.seed ^ 0x5DEECE66DULL};
  int counted = 0;
  std::vector<double> marginal;
  for (int t = 0; t < std::max(1, o.n_trees); ++t) {
    std::vector<size_t> rows(n);
    for (size_t i = 0; i < n; ++i) rows[i] = rng.below(n);  // bootstrap sample
    const RegressionTree tree(x, y, std::move(rows), bounds, o.max_depth, rng);
    double total = 0;
    tree_variances(tree.leaves(), bounds, total, marginal);
    if (!(total > 0)) continue;  // a tree that predicts a constant explains nothing
    ++counted;
    for (size_t f = 0; f < nf; ++f) {
      const double frac = marginal[f] / total;
      mean[f] += frac;
      sq[f] += frac * frac;
    }
  }
  if (counted == 0) return std::vector<double>(nf, 0.0);
  double sum = 0;
  for (size_t f = 0; f < nf; ++f) {
    mean[f] /= counted;
    if (stddev) (*stddev)[f] = std::sqrt(std::max(0.0, sq[f] / counted - mean[f] * mean[f]));
    sum += mean[f];
  }
  for (double& m : mean) m = sum > 0 ? m / sum : 0;
  return mean;
}

size_t importance_trial_count(const std::vector<TrialRecord>& trials, const ImportanceOptions& o) {
  return prepare(trials, o).y.size();
}

std::vector<ParamImportance> param_importances(const std::vector<TrialRecord>& trials, const ImportanceOptions& o) {
  const Prepared p = prepare(trials, o);
  if (p.y.size() < 2 || p.names.empty()) return {};
  std::vector<double> sd;
  const std::vector<double> imp = fanova_importances(p.x, p.y, p.bounds, o, &sd);
  std::vector<ParamImportance> out;
  for (const auto& name : p.names) out.push_back({name, 0, 0});
  for (size_t k = 0; k < p.varying.size(); ++k) {
    out[p.varying[k]].importance = imp[k];
    out[p.varying[k]].stddev = sd[k];
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.importance > b.importance; });
  return out;
}

}  // namespace deft::track
