#include "deft/data/split.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

namespace deft::data {

uint64_t uniform_index(Generator& gen, uint64_t n) {
  DEFT_INTERNAL_CHECK(n > 0, "uniform_index: empty range");
  // Rejection sampling: draws above the largest multiple of n are redrawn.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  while (true) {
    const uint64_t x = (static_cast<uint64_t>(gen.next_u32()) << 32) | gen.next_u32();
    if (x < limit) return x % n;
  }
}

std::vector<int64_t> permutation(int64_t n, Generator& gen) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(p[static_cast<size_t>(i)], p[uniform_index(gen, static_cast<uint64_t>(i + 1))]);
  return p;
}

namespace {
// Cuts `items` (already shuffled) into parts by fraction; rounding keeps totals exact.
void cut(const std::vector<int64_t>& items, const std::vector<double>& fractions,
         std::vector<std::vector<int64_t>>& parts) {
  const auto n = static_cast<double>(items.size());
  double total = 0;
  for (double f : fractions) total += f;
  size_t begin = 0;
  double acc = 0;
  for (size_t k = 0; k < fractions.size(); ++k) {
    acc += fractions[k];
    size_t end = (k + 1 == fractions.size() && std::fabs(total - 1.0) < 1e-9)
                     ? items.size()
                     : static_cast<size_t>(std::llround(acc * n));
    end = std::clamp(end, begin, items.size());
    parts[k].insert(parts[k].end(), items.begin() + static_cast<std::ptrdiff_t>(begin),
                    items.begin() + static_cast<std::ptrdiff_t>(end));
    begin = end;
  }
}
}  // namespace

std::vector<std::vector<int64_t>> split_indices(int64_t n, const std::vector<double>& fractions, uint64_t seed,
                                                const Tensor& labels) {
  double total = 0;
  for (double f : fractions) {
    DEFT_CHECK(f >= 0.0 && f <= 1.0, "split: fraction {} is outside [0, 1]", f);
    total += f;
  }
  DEFT_CHECK(total <= 1.0 + 1e-9, "split: fractions sum to {} (more than 1)", total);
  Generator gen(seed);
  std::vector<std::vector<int64_t>> parts(fractions.size());
  if (!labels.defined()) {
    cut(permutation(n, gen), fractions, parts);
  } else {
    DEFT_CHECK(labels.dtype() == DType::Int64 && labels.numel() == n,
               "split: stratifying needs int64 class labels, one per example");
    const auto y = labels.to_vector<int64_t>();
    std::map<int64_t, std::vector<int64_t>> by_class;
    for (int64_t i = 0; i < n; ++i) by_class[y[static_cast<size_t>(i)]].push_back(i);
    for (auto& [cls, members] : by_class) {
      const auto p = permutation(static_cast<int64_t>(members.size()), gen);
      std::vector<int64_t> shuffled;
      for (int64_t j : p) shuffled.push_back(members[static_cast<size_t>(j)]);
      cut(shuffled, fractions, parts);
    }
    // Interleave classes: sort each part by a seeded permutation so batches mix classes.
    for (auto& part : parts) {
      const auto p = permutation(static_cast<int64_t>(part.size()), gen);
      std::vector<int64_t> mixed(part.size());
      for (size_t j = 0; j < part.size(); ++j) mixed[j] = part[static_cast<size_t>(p[j])];
      part = std::move(mixed);
    }
  }
  return parts;
}

std::pair<Dataset, Dataset> train_test_split(const Dataset& d, double test_fraction, uint64_t seed, bool stratify) {
  DEFT_CHECK(test_fraction > 0.0 && test_fraction < 1.0, "split: test fraction {} must be in (0, 1)", test_fraction);
  const bool strat = stratify && d.task == Task::Classification && d.labels.defined();
  auto parts = split_indices(d.size(), {1.0 - test_fraction, test_fraction}, seed, strat ? d.labels : Tensor());
  return {d.subset(parts[0]), d.subset(parts[1])};
}

std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> kfold(const Dataset& d, int k, uint64_t seed,
                                                                         bool stratify) {
  DEFT_CHECK(k >= 2 && k <= d.size(), "kfold: k = {} must be between 2 and the number of examples ({})", k,
             d.size());
  const bool strat = stratify && d.task == Task::Classification && d.labels.defined();
  const auto folds = split_indices(d.size(), std::vector<double>(static_cast<size_t>(k), 1.0 / k), seed,
                                   strat ? d.labels : Tensor());
  std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> out;
  for (int f = 0; f < k; ++f) {
    std::vector<int64_t> train;
    for (int g = 0; g < k; ++g)
      if (g != f) train.insert(train.end(), folds[static_cast<size_t>(g)].begin(), folds[static_cast<size_t>(g)].end());
    std::sort(train.begin(), train.end());
    out.emplace_back(std::move(train), folds[static_cast<size_t>(f)]);
  }
  return out;
}

DatasetSplits ensure_splits(DatasetSplits s, const SplitOptions& o) {
  if (!s.test) {
    auto [train, test] = train_test_split(s.train, o.test, o.seed, o.stratify);
    train.name = s.train.name;
    test.name = s.train.name;
    s.train = std::move(train);
    s.test = std::move(test);
  }
  if (!s.validation && o.validation > 0.0) {
    auto [train, val] = train_test_split(s.train, o.validation, o.seed + 1, o.stratify);
    s.train = std::move(train);
    s.validation = std::move(val);
  }
  return s;
}

std::string describe_splits(const DatasetSplits& s) {
  std::string out = fmt::format("train {}", s.train.size());
  if (s.validation) out += fmt::format(" · validation {}", s.validation->size());
  if (s.test) out += fmt::format(" · test {}", s.test->size());
  return out;
}

}  // namespace deft::data
