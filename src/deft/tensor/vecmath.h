// Internal: branch-free float math that GCC vectorises (std::exp does not
// without -ffast-math). Accurate to a few ulp over the float range; NaN in,
// NaN out; exp overflows to inf and underflows to 0 as expf does.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace deft::vm {

inline float exp(float x) {
  // ln(FLT_MIN) and ln(FLT_MAX): every result in between is a normal float.
  const float xc = x < -87.33654f ? -87.33654f : (x > 88.7228391f ? 88.7228391f : x);
  const float fx = std::floor(xc * 1.44269504088896341f + 0.5f);
  float r = xc - fx * 0.693359375f;
  r = r - fx * -2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  // 2^fx as two factors: fx reaches 128 near ln(FLT_MAX), past the largest float exponent.
  const int32_t e = static_cast<int32_t>(fx);
  const int32_t bits1 = ((e >> 1) + 127) << 23;
  const int32_t bits2 = ((e - (e >> 1)) + 127) << 23;
  float scale1, scale2;
  std::memcpy(&scale1, &bits1, sizeof(scale1));
  std::memcpy(&scale2, &bits2, sizeof(scale2));
  float out = y * scale1 * scale2;
  out = x < -87.33654f ? 0.0f : out;  // subnormal results flush to zero
  out = x > 88.7228391f ? INFINITY : out;
  return x != x ? x : out;
}

inline float sigmoid(float x) { return 1.0f / (1.0f + vm::exp(-x)); }

inline float tanh(float x) {
  // tanh(x) = sign(x) * (1 - e) / (1 + e), e = exp(-2|x|); no cancellation for large |x|.
  const float ax = x < 0 ? -x : x;
  const float e = vm::exp(-2.0f * ax);
  float t = (1.0f - e) / (1.0f + e);
  const float x2 = ax * ax;  // small |x|: Taylor series avoids the cancellation in 1 - e
  t = ax < 0.0625f ? ax * (1.0f + x2 * (-1.0f / 3 + x2 * (2.0f / 15 - x2 * 17.0f / 315))) : t;
  return x < 0 ? -t : t;
}

// The largest of x[0..n), or 0 when that is not finite (a row of -inf, or an
// inf): the shift that keeps exp(x - shift) in range for softmax and logsumexp.
inline float stable_shift(const float* x, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return std::isfinite(m) ? m : 0.0f;
}

// log(sum_i exp(x[i])) of one row, as log_softmax and the cross-entropy losses use it.
inline float logsumexp(const float* x, int64_t n) {
  const float m = stable_shift(x, n);
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += vm::exp(x[i] - m);
  return m + std::log(s);
}

}  // namespace deft::vm
