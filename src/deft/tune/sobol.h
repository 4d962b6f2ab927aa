// The Sobol low-discrepancy sequence, and the pieces the samplers share (seeded random
// draws, mapping a point of the unit cube onto a Distribution, the intersection search
// space). Users go through make_sampler(); tests and the samplers' own files use these.
//
//   SobolSequence s(3, /*scramble*/ true, /*seed*/ 7);
//   std::vector<double> x = s.point(trial_number);  // in [0, 1)^3
//
// Direction numbers: Joe and Kuo (2008), new-joe-kuo-6.21201, for up to
// SobolSequence::kMaxDims dimensions. Scrambling is hash-based nested uniform (Owen)
// scrambling (Burley 2020), seeded per dimension: the first 2^m points stay a (t,m,s)-net.
#pragma once
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "deft/tune/sampler.h"

namespace deft::tune {

class SobolSequence {
 public:
  static constexpr int kMaxDims = 52;
  // InputError when dims is outside 1..kMaxDims.
  SobolSequence(int dims, bool scramble, uint64_t seed);
  int dims() const { return static_cast<int>(directions_.size()); }
  // The point of index i (not Gray-code order: index i is the i-th point of the
  // standard sequence, so any worker can compute any index).
  std::vector<double> point(uint64_t index) const;

 private:
  std::vector<std::vector<uint32_t>> directions_;  // [dim][bit] 32 direction numbers
  std::vector<uint32_t> scramble_seeds_;           // empty when not scrambled
};

namespace detail {

// A stable 64-bit mix of (seed, trial number, a name) — the RNG stream of one draw.
// Derived from the trial number, so several processes with the same seed do not collide.
uint64_t stream_seed(uint64_t seed, int64_t number, const std::string& salt);

// mt19937_64 with its own uniform/normal transforms, so draws do not depend on the
// standard library's distribution implementations.
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  double uniform();               // [0, 1)
  double normal();                // standard normal
  uint64_t below(uint64_t n);     // uniform integer in [0, n)
  uint64_t bits() { return engine_(); }

 private:
  std::mt19937_64 engine_;
};

// Maps u in [0, 1) to a value of d (internal representation): linear or log scale,
// rounded onto the step grid (ints, stepped floats), the index for categorical.
double from_unit(const Distribution& d, double u);

// The parameters that every Complete (and Pruned, when include_pruned) trial has with the
// same distribution, skipping single-valued ones (Optuna's IntersectionSearchSpace).
SearchSpace intersection_search_space(const StudyView& view, bool include_pruned);

std::unique_ptr<Sampler> make_random_sampler(uint64_t seed);
std::unique_ptr<Sampler> make_grid_sampler(const nlohmann::json& options);
std::unique_ptr<Sampler> make_sobol_sampler(const nlohmann::json& options);
std::unique_ptr<Sampler> make_tpe_sampler(const nlohmann::json& options);

}  // namespace detail
}  // namespace deft::tune
