// The Sobol sequence and the Sobol (QMC) sampler.
#include "deft/tune/sobol.h"

#include <algorithm>
#include <array>
#include <iterator>

#include "deft/tensor/config_reader.h"
#include "deft/tensor/error.h"

namespace deft::tune {

using json = nlohmann::json;

namespace {

// Joe and Kuo's new-joe-kuo-6.21201 for dimensions 2..52: the degree s of the primitive
// polynomial, its coefficients a (without the leading and trailing 1), and the initial
// direction numbers m_1..m_s. Dimension 1 is the van der Corput sequence.
struct JoeKuoRow {
  int s;
  uint32_t a;
  std::array<uint32_t, 8> m;
};
constexpr JoeKuoRow kJoeKuo[] = {
    {1, 0, {1}},
    {2, 1, {1, 3}},
    {3, 1, {1, 3, 1}},
    {3, 2, {1, 1, 1}},
    {4, 1, {1, 1, 3, 3}},
    {4, 4, {1, 3, 5, 13}},
    {5, 2, {1, 1, 5, 5, 17}},
    {5, 4, {1, 1, 5, 5, 5}},
    {5, 7, {1, 1, 7, 11, 19}},
    {5, 11, {1, 1, 5, 1, 1}},
    {5, 13, {1, 1, 1, 3, 11}},
    {5, 14, {1, 3, 5, 5, 31}},
    {6, 1, {1, 3, 3, 9, 7, 49}},
    {6, 13, {1, 1, 1, 15, 21, 21}},
    {6, 16, {1, 3, 1, 13, 27, 49}},
    {6, 19, {1, 1, 1, 15, 7, 5}},
    {6, 22, {1, 3, 1, 15, 13, 25}},
    {6, 25, {1, 1, 5, 5, 19, 61}},
    {7, 1, {1, 3, 7, 11, 23, 15, 103}},
    {7, 4, {1, 3, 7, 13, 13, 15, 69}},
    {7, 7, {1, 1, 3, 13, 7, 35, 63}},
    {7, 8, {1, 3, 5, 9, 1, 25, 53}},
    {7, 14, {1, 3, 1, 13, 9, 35, 107}},
    {7, 19, {1, 3, 1, 5, 27, 61, 31}},
    {7, 21, {1, 1, 5, 11, 19, 41, 61}},
    {7, 28, {1, 3, 5, 3, 3, 13, 69}},
    {7, 31, {1, 1, 7, 13, 1, 19, 1}},
    {7, 32, {1, 3, 7, 5, 13, 19, 59}},
    {7, 37, {1, 1, 3, 9, 25, 29, 41}},
    {7, 41, {1, 3, 5, 13, 23, 1, 55}},
    {7, 42, {1, 3, 7, 3, 13, 59, 17}},
    {7, 50, {1, 3, 1, 3, 5, 53, 69}},
    {7, 55, {1, 1, 5, 5, 23, 33, 13}},
    {7, 56, {1, 1, 7, 7, 1, 61, 123}},
    {7, 59, {1, 1, 7, 9, 13, 61, 49}},
    {7, 62, {1, 3, 3, 5, 3, 55, 33}},
    {8, 14, {1, 3, 1, 15, 31, 13, 49, 245}},
    {8, 21, {1, 3, 5, 15, 31, 59, 63, 97}},
    {8, 22, {1, 3, 1, 11, 11, 11, 77, 249}},
    {8, 38, {1, 3, 1, 11, 27, 43, 71, 9}},
    {8, 47, {1, 1, 7, 15, 21, 11, 81, 45}},
    {8, 49, {1, 3, 7, 3, 25, 31, 65, 79}},
    {8, 50, {1, 3, 1, 1, 19, 11, 3, 205}},
    {8, 52, {1, 1, 5, 9, 19, 21, 29, 157}},
    {8, 56, {1, 3, 7, 11, 1, 33, 89, 185}},
    {8, 67, {1, 3, 3, 3, 15, 9, 79, 71}},
    {8, 70, {1, 3, 7, 11, 15, 39, 119, 27}},
    {8, 84, {1, 1, 3, 1, 11, 31, 97, 225}},
    {8, 97, {1, 1, 1, 3, 23, 43, 57, 177}},
    {8, 103, {1, 3, 7, 7, 17, 17, 37, 71}},
    {8, 115, {1, 3, 1, 5, 27, 63, 123, 213}},
};
static_assert(std::size(kJoeKuo) + 1 == SobolSequence::kMaxDims);

constexpr int kBits = 32;

uint32_t reverse_bits(uint32_t x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
  return (x >> 16) | (x << 16);
}

// Burley's hash-based Owen scrambling: on the bit-reversed value, each output bit depends
// only on the bits below it, i.e. each digit of x is permuted depending on the digits above.
uint32_t owen_scramble(uint32_t x, uint32_t seed) {
  x = reverse_bits(x);
  x += seed;
  x ^= x * 0x6c50b47cu;
  x ^= x * 0xb82f1e52u;
  x ^= x * 0xc7afe638u;
  x ^= x * 0x8d22f6e6u;
  return reverse_bits(x);
}

}  // namespace

SobolSequence::SobolSequence(int dims, bool scramble, uint64_t seed) {
  DEFT_CHECK(dims >= 1 && dims <= kMaxDims, "sobol: {} dimensions, supported 1..{}", dims, kMaxDims);
  directions_.assign(static_cast<size_t>(dims), std::vector<uint32_t>(kBits));
  for (int k = 0; k < kBits; ++k) directions_[0][static_cast<size_t>(k)] = 1u << (kBits - 1 - k);
  for (int j = 1; j < dims; ++j) {
    const JoeKuoRow& row = kJoeKuo[j - 1];
    auto& v = directions_[static_cast<size_t>(j)];
    const int s = row.s;
    for (int k = 0; k < kBits; ++k) {
      if (k < s) {
        v[static_cast<size_t>(k)] = row.m[static_cast<size_t>(k)] << (kBits - 1 - k);
        continue;
      }
      uint32_t x = v[static_cast<size_t>(k - s)] ^ (v[static_cast<size_t>(k - s)] >> s);
      for (int l = 1; l < s; ++l)
        if ((row.a >> (s - 1 - l)) & 1u) x ^= v[static_cast<size_t>(k - l)];
      v[static_cast<size_t>(k)] = x;
    }
  }
  if (scramble) {
    detail::Rng rng(detail::stream_seed(seed, -2, "sobol-scramble"));
    for (int j = 0; j < dims; ++j) scramble_seeds_.push_back(static_cast<uint32_t>(rng.bits() >> 32));
  }
}

std::vector<double> SobolSequence::point(uint64_t index) const {
  std::vector<double> out(directions_.size());
  for (size_t j = 0; j < directions_.size(); ++j) {
    uint32_t x = 0;
    uint64_t i = index;
    for (size_t k = 0; i != 0 && k < static_cast<size_t>(kBits); ++k, i >>= 1)
      if (i & 1u) x ^= directions_[j][k];
    if (!scramble_seeds_.empty()) x = owen_scramble(x, scramble_seeds_[j]);
    out[j] = static_cast<double>(x) * 0x1.0p-32;
  }
  return out;
}

namespace detail {

namespace {

// Point index = trial number, over the intersection search space of the Complete trials
// (in name order, the first kMaxDims of them); every other parameter is drawn at random.
class SobolSampler final : public Sampler {
 public:
  SobolSampler(uint64_t seed, bool scramble) : seed_(seed), scramble_(scramble), random_(make_random_sampler(seed)) {}
  std::string name() const override { return "sobol"; }
  SearchSpace infer_relative_search_space(const StudyView& view, const TrialRecord&) override {
    SearchSpace space = intersection_search_space(view, false);
    while (space.size() > static_cast<size_t>(SobolSequence::kMaxDims)) space.erase(std::prev(space.end()));
    return space;
  }
  std::map<std::string, double> sample_relative(const StudyView&, const TrialRecord& trial,
                                                const SearchSpace& space) override {
    if (space.empty()) return {};
    const auto dims = static_cast<int>(space.size());
    if (!sequence_ || sequence_->dims() != dims) sequence_ = std::make_unique<SobolSequence>(dims, scramble_, seed_);
    const std::vector<double> u = sequence_->point(static_cast<uint64_t>(std::max<int64_t>(trial.number, 0)));
    std::map<std::string, double> out;
    size_t j = 0;
    for (const auto& [param, d] : space) out[param] = from_unit(d, u[j++]);
    return out;
  }
  double sample_independent(const StudyView& view, const TrialRecord& trial, const std::string& param,
                            const Distribution& d) override {
    return random_->sample_independent(view, trial, param, d);
  }

 private:
  uint64_t seed_;
  bool scramble_;
  std::unique_ptr<Sampler> random_;
  std::unique_ptr<SobolSequence> sequence_;
};

}  // namespace

std::unique_ptr<Sampler> make_sobol_sampler(const json& options) {
  ConfigReader r("sampler sobol", options);
  const auto seed = static_cast<uint64_t>(r.integer("seed", 0));
  const bool scramble = r.boolean("scramble", true);
  r.finish();
  return std::make_unique<SobolSampler>(seed, scramble);
}

}  // namespace detail
}  // namespace deft::tune
