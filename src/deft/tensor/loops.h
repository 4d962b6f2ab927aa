// Internal: N-operand strided iteration used by the elementwise, copy and
// reduction kernels. Not part of the public API.
//
// A LoopPlan takes an output shape and, for each operand, strides already
// broadcast to that shape (0 on broadcast axes). It drops size-1 axes and merges
// axes that are contiguous for every operand, so a contiguous op becomes one
// flat run that the compiler vectorises.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "deft/tensor/tensor.h"

namespace deft::detail {

// Strides of `t` as seen from `out_shape` (t's shape must broadcast to it).
Shape broadcast_strides(const Tensor& t, const Shape& out_shape);

template <size_t N>
struct LoopPlan {
  Shape shape;                     // coalesced
  std::array<Shape, N> strides;    // coalesced, per operand
  int64_t numel = 1;

  LoopPlan(const Shape& out_shape, const std::array<Shape, N>& operand_strides) {
    for (int64_t d : out_shape) numel *= d;
    for (size_t d = 0; d < out_shape.size(); ++d) {
      if (out_shape[d] == 1) continue;
      if (!shape.empty()) {
        bool mergeable = true;
        for (size_t k = 0; k < N; ++k)
          if (strides[k].back() != operand_strides[k][d] * out_shape[d]) mergeable = false;
        if (mergeable) {
          shape.back() *= out_shape[d];
          for (size_t k = 0; k < N; ++k) strides[k].back() = operand_strides[k][d];
          continue;
        }
      }
      shape.push_back(out_shape[d]);
      for (size_t k = 0; k < N; ++k) strides[k].push_back(operand_strides[k][d]);
    }
    if (shape.empty()) {
      shape.push_back(1);
      for (size_t k = 0; k < N; ++k) strides[k].push_back(0);
    }
  }

  int64_t inner_stride(size_t k) const { return strides[k].back(); }

  // Calls body(offsets, n) for each run of n elements along the innermost axis
  // covering logical elements [begin, end); offsets are in elements per operand.
  template <class Body>
  void run(int64_t begin, int64_t end, Body&& body) const {
    const int64_t nd = static_cast<int64_t>(shape.size());
    int64_t idx[16] = {0};
    std::array<int64_t, N> off{};
    int64_t rem = begin;
    for (int64_t d = nd - 1; d >= 0; --d) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
      for (size_t k = 0; k < N; ++k) off[k] += idx[d] * strides[k][d];
    }
    const int64_t inner = shape[nd - 1];
    int64_t i = begin;
    while (i < end) {
      const int64_t n = std::min(inner - idx[nd - 1], end - i);
      body(off, n);
      i += n;
      idx[nd - 1] += n;
      for (size_t k = 0; k < N; ++k) off[k] += n * strides[k][nd - 1];
      for (int64_t d = nd - 1; d > 0 && idx[d] == shape[d]; --d) {
        idx[d] = 0;
        idx[d - 1] += 1;
        for (size_t k = 0; k < N; ++k) off[k] += strides[k][d - 1] - shape[d] * strides[k][d];
      }
    }
  }
};

constexpr int64_t kParallelGrain = 32768;  // elements per task for cheap elementwise ops

}  // namespace deft::detail
