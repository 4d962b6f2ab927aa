// Seeded random numbers from a counter-based generator (Philox4x32-10).
//
// Element i of a draw depends only on (seed, counter offset, i), never on how
// the work is split between threads: the same seed gives the same numbers on
// 1 thread or 64.
//
//   deft::Generator gen(42);
//   Tensor w = Tensor::normal({784, 128}, 0.f, 0.05f, gen);
#pragma once

#include <array>
#include <cstdint>

namespace deft {

std::array<uint32_t, 4> philox4x32(uint64_t counter, uint64_t key);
// Four standard normals from one Philox block (Box-Muller on its two pairs).
std::array<float, 4> philox_normal4(uint64_t counter, uint64_t key);
// philox4x32 for `blocks` consecutive counters: out[4*i + j] = philox4x32(base + i, key)[j].
// Computed 16 counters at a time, lane by lane, so it vectorises (AVX-512: ~10x a loop of calls).
void philox4x32_fill(uint64_t base, uint64_t key, int64_t blocks, uint32_t* out);
// A uniform float in [0, 1) from 24 random bits.
inline float unit_float(uint32_t x) { return static_cast<float>(x >> 8) * 0x1.0p-24f; }

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }
  // Reserves `blocks` Philox counters and returns the first one.
  uint64_t reserve(uint64_t blocks) {
    const uint64_t first = offset_;
    offset_ += blocks;
    return first;
  }
  // One uniform 32-bit integer (for shuffles and sampling on the host).
  uint32_t next_u32() { return philox4x32(reserve(1), seed_)[0]; }
  uint64_t next_u64() {
    const auto r = philox4x32(reserve(1), seed_);
    return (static_cast<uint64_t>(r[0]) << 32) | r[1];
  }
  double next_double() {  // uniform in [0, 1)
    const auto r = philox4x32(reserve(1), seed_);
    return static_cast<double>((static_cast<uint64_t>(r[0]) << 21) ^ r[1]) * 0x1.0p-53;
  }

 private:
  uint64_t seed_ = 0;
  uint64_t offset_ = 0;
};

Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace deft
