// Helpers for the tests of every layer (tensor, nn, optim, data, train):
// deterministic test data (from the standard library, not deft's generator),
// naive row-major index arithmetic, comparison helpers, checks on the errors a
// call throws, and a guard for the thread count. Reference implementations in
// the tests use these, never deft's own stride logic. Include it from another
// folder as "../tensor/test_util.h".
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "deft/tensor/error.h"
#include "deft/tensor/kernels.h"
#include "deft/tensor/parallel.h"
#include "deft/tensor/tensor.h"

namespace tt {

using deft::DType;
using deft::Shape;
using deft::Tensor;

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

inline Tensor rand_tensor(const Shape& shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  return Tensor::from_vector(random_floats(static_cast<size_t>(numel(shape)), seed, lo, hi), shape);
}

// Row-major multi-index of a flat position.
inline std::vector<int64_t> unravel(int64_t flat, const Shape& s) {
  std::vector<int64_t> idx(s.size());
  for (int64_t d = static_cast<int64_t>(s.size()) - 1; d >= 0; --d) {
    idx[d] = flat % s[d];
    flat /= s[d];
  }
  return idx;
}

inline int64_t ravel(const std::vector<int64_t>& idx, const Shape& s) {
  int64_t flat = 0;
  for (size_t d = 0; d < s.size(); ++d) flat = flat * s[d] + idx[d];
  return flat;
}

// NumPy broadcasting, written out naively.
inline Shape bshape(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i + a.size() >= n ? a[i + a.size() - n] : 1;
    const int64_t db = i + b.size() >= n ? b[i + b.size() - n] : 1;
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Flat row-major position in an input of shape `in` of the element that
// broadcasts to output multi-index `out_idx`.
inline int64_t bcast_flat(const std::vector<int64_t>& out_idx, const Shape& in) {
  const size_t lead = out_idx.size() - in.size();
  int64_t flat = 0;
  for (size_t d = 0; d < in.size(); ++d) flat = flat * in[d] + (in[d] == 1 ? 0 : out_idx[d + lead]);
  return flat;
}

inline ::testing::AssertionResult all_close(const std::vector<float>& got, const std::vector<double>& want,
                                            double atol, double rtol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " != " << want.size();
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    if (std::isnan(w) && std::isnan(g)) continue;
    if (std::isinf(w) && g == w) continue;
    if (!(std::fabs(g - w) <= atol + rtol * std::fabs(w)))
      return ::testing::AssertionFailure()
             << "element " << i << ": got " << g << ", want " << w << " (diff " << std::fabs(g - w) << ")";
  }
  return ::testing::AssertionSuccess();
}

inline std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// Same shape, dtype and bytes: for results that must not depend on thread counts or resumption.
inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor ac = a.contiguous_copy(), bc = b.contiguous_copy();
  return std::memcmp(ac.raw_data(), bc.raw_data(),
                     static_cast<size_t>(a.numel()) * deft::dtype_size(a.dtype())) == 0;
}

// Runs `f` and returns the message of the E (or subclass) it throws; adds a test
// failure and returns nullopt when it throws nothing or something else.
template <class E, class F>
std::optional<std::string> thrown_message(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return std::string(e.what());
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw the wrong exception type: " << e.what();
    return std::nullopt;
  }
  ADD_FAILURE() << "did not throw";
  return std::nullopt;
}

// Runs `f`, expects it to throw E (or a subclass) and returns the message.
template <class E, class F>
std::string error_message(F&& f) {
  return thrown_message<E>(f).value_or("");
}

// Expects f() to throw E (or a subclass) whose message contains every one of `parts`.
template <class E = deft::InputError, class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  const std::optional<std::string> msg = thrown_message<E>(f);
  if (!msg) return;
  for (const std::string& p : parts)
    EXPECT_NE(msg->find(p), std::string::npos) << "'" << p << "' not in: " << *msg;
}

template <class F>
void expect_input_error(F&& f, const std::vector<std::string>& parts) {
  expect_error<deft::InputError>(f, parts);
}

// Restores the thread count when a test that changes it ends; the second form
// also sets it for the scope: `ThreadCountGuard threads(2);`.
class ThreadCountGuard {
 public:
  ThreadCountGuard() : saved_(deft::num_threads()) {}
  explicit ThreadCountGuard(int n) : ThreadCountGuard() { deft::set_num_threads(n); }
  ~ThreadCountGuard() { deft::set_num_threads(saved_); }
  ThreadCountGuard(const ThreadCountGuard&) = delete;
  ThreadCountGuard& operator=(const ThreadCountGuard&) = delete;

 private:
  int saved_;
};

}  // namespace tt
