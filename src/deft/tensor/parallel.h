// The one intra-op thread pool.
//
// deft runs every parallel kernel, its own and oneDNN's, on a single OpenMP pool
// (libgomp, the runtime Debian's oneDNN is built against), so two pools never
// fight over the cores. Its size comes from set_num_threads(), or the
// DEFT_NUM_THREADS environment variable, or the number of cores.
//
//   deft::set_num_threads(2);
//   deft::parallel_for(0, n, 1 << 14, [&](int64_t b, int64_t e) { ... });
//
// Work is split into contiguous ranges that depend only on (n, grain, threads),
// so a kernel that writes disjoint outputs is deterministic.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace deft {

int num_threads();
void set_num_threads(int n);  // n <= 0: all cores

namespace detail {
// Makes the calling thread's OpenMP team size match num_threads(); cheap when it does.
void sync_thread_count();
bool thread_is_serial();
}  // namespace detail

// While alive, kernels called from this thread use `n` threads whatever the global
// setting (the tuner's in-process workers split the cores between trials this way).
class ThreadCountScope {
 public:
  explicit ThreadCountScope(int n);
  ~ThreadCountScope();
  ThreadCountScope(const ThreadCountScope&) = delete;
  ThreadCountScope& operator=(const ThreadCountScope&) = delete;

 private:
  int previous_;
};

// While alive, kernels called from this thread run single-threaded (used by
// background workers such as the data loader's, so they never start OpenMP
// teams of their own next to the main pool).
class SerialScope {
 public:
  SerialScope();
  ~SerialScope();
  SerialScope(const SerialScope&) = delete;
  SerialScope& operator=(const SerialScope&) = delete;

 private:
  bool previous_;
};

template <class F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& f) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  const int threads = num_threads();
  const int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / std::max<int64_t>(grain, 1));
  if (chunks <= 1 || omp_in_parallel() || detail::thread_is_serial()) {
    f(begin, end);
    return;
  }
  detail::sync_thread_count();
#pragma omp parallel num_threads(static_cast<int>(chunks))
  {
    const int64_t t = omp_get_thread_num();
    const int64_t nt = omp_get_num_threads();
    const int64_t b = begin + n * t / nt;
    const int64_t e = begin + n * (t + 1) / nt;
    if (b < e) f(b, e);
  }
}

}  // namespace deft
