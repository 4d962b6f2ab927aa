#include "deft/tensor/random.h"

#include <cmath>

#include "deft/tensor/parallel.h"
#include "deft/tensor/tensor.h"

namespace deft {

std::array<uint32_t, 4> philox4x32(uint64_t counter, uint64_t key) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0,
           c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c2 = n2;
    k0 += kW0;
    k1 += kW1;
  }
  return {c0, c1, c2, c3};
}

void philox4x32_fill(uint64_t base, uint64_t key, int64_t blocks, uint32_t* out) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  constexpr int kLanes = 16;
  int64_t i = 0;
  for (; i + kLanes <= blocks; i += kLanes) {
    alignas(64) uint32_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      const uint64_t counter = base + static_cast<uint64_t>(i + l);
      c0[l] = static_cast<uint32_t>(counter);
      c1[l] = static_cast<uint32_t>(counter >> 32);
      c2[l] = 0;
      c3[l] = 0;
    }
    uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
    for (int round = 0; round < 10; ++round) {
      for (int l = 0; l < kLanes; ++l) {
        const uint64_t p0 = static_cast<uint64_t>(kM0) * c0[l];
        const uint64_t p1 = static_cast<uint64_t>(kM1) * c2[l];
        const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1[l] ^ k0;
        const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3[l] ^ k1;
        c1[l] = static_cast<uint32_t>(p1);
        c3[l] = static_cast<uint32_t>(p0);
        c0[l] = n0;
        c2[l] = n2;
      }
      k0 += kW0;
      k1 += kW1;
    }
    for (int l = 0; l < kLanes; ++l) {
      uint32_t* o = out + 4 * (i + l);
      o[0] = c0[l], o[1] = c1[l], o[2] = c2[l], o[3] = c3[l];
    }
  }
  for (; i < blocks; ++i) {
    const auto r = philox4x32(base + static_cast<uint64_t>(i), key);
    for (int j = 0; j < 4; ++j) out[4 * i + j] = r[static_cast<size_t>(j)];
  }
}

std::array<float, 4> philox_normal4(uint64_t counter, uint64_t key) {
  const auto r = philox4x32(counter, key);
  std::array<float, 4> z;
  for (int pair = 0; pair < 2; ++pair) {
    // Box-Muller; 1 - u keeps the log argument in (0, 1].
    const float u1 = 1.0f - unit_float(r[2 * pair]);
    const float u2 = unit_float(r[2 * pair + 1]);
    const float rad = std::sqrt(-2.0f * std::log(u1));
    const float th = 6.28318530717958647692f * u2;
    z[2 * pair] = rad * std::cos(th);
    z[2 * pair + 1] = rad * std::sin(th);
  }
  return z;
}

Generator& default_generator() {
  static Generator gen(0);
  return gen;
}
void manual_seed(uint64_t seed) { default_generator().set_state(seed, 0); }


Tensor Tensor::uniform(const Shape& shape, float low, float high, Generator& gen) {
  Tensor out = empty(shape, DType::Float32);
  const int64_t n = out.numel();
  const uint64_t base = gen.reserve(static_cast<uint64_t>((n + 3) / 4));
  const uint64_t key = gen.seed();
  float* p = out.data<float>();
  const float scale = high - low;
  parallel_for(0, (n + 3) / 4, 4096, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) {
      const auto r = philox4x32(base + blk, key);
      for (int l = 0; l < 4 && blk * 4 + l < n; ++l) p[blk * 4 + l] = low + scale * unit_float(r[l]);
    }
  });
  return out;
}

Tensor Tensor::normal(const Shape& shape, float mean, float stddev, Generator& gen) {
  Tensor out = empty(shape, DType::Float32);
  const int64_t n = out.numel();
  const uint64_t base = gen.reserve(static_cast<uint64_t>((n + 3) / 4));
  const uint64_t key = gen.seed();
  float* p = out.data<float>();
  parallel_for(0, (n + 3) / 4, 2048, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) {
      const auto z = philox_normal4(base + blk, key);
      for (int l = 0; l < 4 && blk * 4 + l < n; ++l) p[blk * 4 + l] = mean + stddev * z[l];
    }
  });
  return out;
}

}  // namespace deft
