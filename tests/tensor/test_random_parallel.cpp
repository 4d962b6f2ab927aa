// Determinism and the thread pool: the Philox generator, uniform/normal draws
// that are bitwise identical for any thread count, their statistics, reductions
// that are bitwise identical across thread counts and runs, and parallel_for
// covering every index exactly once.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <mutex>

#include "deft/tensor/random.h"
#include "test_util.h"

using namespace deft;
namespace k = deft::kernel;

namespace {

using tt::bitwise_equal;

const int kThreadCounts[] = {1, 2, 4};

}  // namespace

// ---- generator ---------------------------------------------------------------------------------

TEST(Random, PhiloxKnownAnswer) {
  // Random123's known-answer vector for Philox4x32-10 with a zero counter and key.
  const auto r = philox4x32(0, 0);
  EXPECT_EQ(r[0], 0x6627e8d5u);
  EXPECT_EQ(r[1], 0xe169c58du);
  EXPECT_EQ(r[2], 0xbc57ac4cu);
  EXPECT_EQ(r[3], 0x9b00dbd8u);
  // Counter and key both matter.
  EXPECT_NE(philox4x32(1, 0), r);
  EXPECT_NE(philox4x32(0, 1), r);
  EXPECT_NE(philox4x32(uint64_t{1} << 32, 0), r);
  EXPECT_NE(philox4x32(0, uint64_t{1} << 32), r);
}

TEST(Random, GeneratorStateAndHostDraws) {
  Generator g(42);
  EXPECT_EQ(g.seed(), 42u);
  EXPECT_EQ(g.offset(), 0u);
  EXPECT_EQ(g.reserve(3), 0u);
  EXPECT_EQ(g.reserve(2), 3u);
  EXPECT_EQ(g.offset(), 5u);
  const uint32_t u = g.next_u32();
  EXPECT_EQ(u, philox4x32(5, 42)[0]);
  EXPECT_EQ(g.offset(), 6u);
  g.set_state(42, 5);
  EXPECT_EQ(g.next_u32(), u);
  double lo = 1, hi = 0;
  for (int i = 0; i < 10000; ++i) {
    const double d = g.next_double();
    ASSERT_GE(d, 0.0);
    ASSERT_LT(d, 1.0);
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_LT(lo, 0.01);
  EXPECT_GT(hi, 0.99);
  manual_seed(7);
  const Tensor a = Tensor::rand({10}, default_generator());
  manual_seed(7);
  const Tensor b = Tensor::rand({10}, default_generator());
  EXPECT_TRUE(bitwise_equal(a, b));
  EXPECT_EQ(default_generator().seed(), 7u);
}

TEST(Random, DrawsAreCounterBased) {
  // Element i depends only on (seed, offset, i): a longer draw extends a shorter one,
  // and the generator advances by one counter per 4 elements.
  Generator g1(9), g2(9);
  const auto a = Tensor::uniform({10}, -1, 1, g1).to_vector<float>();
  const auto b = Tensor::uniform({4, 5}, -1, 1, g2).to_vector<float>();
  EXPECT_EQ(g1.offset(), 3u);  // ceil(10 / 4)
  EXPECT_EQ(g2.offset(), 5u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << i;
  // Each element is low + (high - low) * (top 24 bits of its Philox word) / 2^24.
  for (size_t i = 0; i < b.size(); ++i) {
    const uint32_t word = philox4x32(i / 4, 9)[i % 4];
    EXPECT_EQ(b[i], -1.0f + 2.0f * (static_cast<float>(word >> 8) * 0x1.0p-24f)) << i;
  }
  // Consecutive draws differ; seeds differ.
  Generator g3(9);
  const Tensor first = Tensor::randn({100}, g3), second = Tensor::randn({100}, g3);
  EXPECT_FALSE(bitwise_equal(first, second));
  Generator g4(10);
  EXPECT_FALSE(bitwise_equal(first, Tensor::randn({100}, g4)));
  // Restoring the state replays the second draw.
  g3.set_state(9, 25);
  EXPECT_TRUE(bitwise_equal(second, Tensor::randn({100}, g3)));
  // Empty draws consume nothing.
  Generator g5(1);
  EXPECT_EQ(Tensor::rand({0, 3}, g5).numel(), 0);
  EXPECT_EQ(g5.offset(), 0u);
}

TEST(Random, BitwiseIdenticalAcrossThreadCounts) {
  tt::ThreadCountGuard guard;
  const Shape s = {1001, 1003};  // ~1M elements, not a multiple of 4
  Tensor ref_u, ref_n;
  for (int threads : kThreadCounts) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    set_num_threads(threads);
    ASSERT_EQ(num_threads(), threads);
    Generator g(1234);
    const Tensor u = Tensor::uniform(s, -0.5f, 2.0f, g);
    const Tensor n = Tensor::normal(s, 0.0f, 1.0f, g);
    if (!ref_u.defined()) {
      ref_u = u;
      ref_n = n;
      continue;
    }
    EXPECT_TRUE(bitwise_equal(u, ref_u));
    EXPECT_TRUE(bitwise_equal(n, ref_n));
  }
}

TEST(Random, UniformStatistics) {
  Generator g(5);
  const auto v = Tensor::uniform({1 << 20}, -2.0f, 3.0f, g).to_vector<float>();
  double sum = 0, sq = 0;
  std::vector<int64_t> hist(10, 0);
  for (float x : v) {
    ASSERT_GE(x, -2.0f);
    ASSERT_LT(x, 3.0f);
    sum += x;
    sq += static_cast<double>(x) * x;
    hist[static_cast<size_t>(std::min(9.0, std::floor((x + 2.0) / 0.5)))] += 1;
  }
  const double n = static_cast<double>(v.size());
  const double mean = sum / n, var = sq / n - mean * mean;
  EXPECT_NEAR(mean, 0.5, 0.01);  // sd of the mean: 1.44/1024
  EXPECT_NEAR(var, 25.0 / 12.0, 0.02);
  for (int64_t h : hist) EXPECT_NEAR(static_cast<double>(h) / n, 0.1, 0.002);
}

TEST(Random, NormalStatistics) {
  Generator g(2024);
  const int64_t n = 1 << 20;
  const auto v = Tensor::randn({n}, g).to_vector<float>();
  double sum = 0, sq = 0, quad = 0;
  int64_t within1 = 0, within2 = 0;
  for (float x : v) {
    ASSERT_TRUE(std::isfinite(x));
    sum += x;
    sq += static_cast<double>(x) * x;
    quad += static_cast<double>(x) * x * x * x;
    within1 += std::fabs(x) < 1.0f;
    within2 += std::fabs(x) < 2.0f;
  }
  const double nd = static_cast<double>(n);
  const double mean = sum / nd, sd = std::sqrt(sq / nd - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.005);  // ~5 standard errors
  EXPECT_NEAR(sd, 1.0, 0.005);
  EXPECT_NEAR(quad / nd, 3.0, 0.05);  // kurtosis of a Gaussian
  EXPECT_NEAR(static_cast<double>(within1) / nd, 0.682689, 0.003);
  EXPECT_NEAR(static_cast<double>(within2) / nd, 0.954500, 0.002);
  // Mean and stddev arguments shift and scale.
  Generator g2(2024);
  const auto w = Tensor::normal({n}, 3.0f, 0.5f, g2).to_vector<float>();
  for (size_t i = 0; i < 1000; ++i) EXPECT_NEAR(w[i], 3.0f + 0.5f * v[i], 1e-5f) << i;
}

// ---- deterministic reductions ------------------------------------------------------------

TEST(Determinism, ReductionsBitwiseIdenticalAcrossThreadsAndRuns) {
  tt::ThreadCountGuard guard;
  const Tensor big = tt::rand_tensor({3, 700, 1000}, 77, -1.0f, 2.0f);  // 2.1M elements
  const Tensor bigt = k::permute(big, {2, 0, 1});
  struct Case {
    const char* name;
    std::function<Tensor()> f;
  };
  const std::vector<Case> cases = {
      {"full sum", [&] { return k::reduce(k::Reduce::Sum, big, {}, false); }},
      {"full mean", [&] { return k::reduce(k::Reduce::Mean, big, {}, false); }},
      {"full max", [&] { return k::reduce(k::Reduce::Max, big, {}, false); }},
      {"full sum, permuted", [&] { return k::reduce(k::Reduce::Sum, bigt, {}, false); }},
      {"logsumexp", [&] { return k::logsumexp(big, {}, false); }},
      {"sum over rows", [&] { return k::reduce(k::Reduce::Sum, big, {2}, false); }},
      {"sum over outer axes",
       [&] {
         return k::reduce(k::Reduce::Sum, big, {0, 1}, false);
       }},
      {"sum over a strided axis",
       [&] {
         return k::reduce(k::Reduce::Sum, bigt, {1, 2}, true);
       }},
      {"softmax",
       [&] {
         return k::softmax(k::reshape(big, {2100, 1000}), 0);
       }},
      {"index_add",
       [&] {
         std::vector<int64_t> idx(700);
         for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i % 5);
         return k::index_add({3, 5, 1000}, 1, Tensor::from_vector(idx), big);
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Tensor ref;
    for (int threads : kThreadCounts) {
      set_num_threads(threads);
      for (int run = 0; run < 2; ++run) {
        const Tensor r = c.f();
        if (!ref.defined()) {
          ref = r;
        } else {
          EXPECT_TRUE(bitwise_equal(r, ref)) << "threads " << threads << " run " << run;
        }
      }
    }
  }
}

// ---- thread pool -----------------------------------------------------------------------------

TEST(ThreadPool, SetNumThreads) {
  tt::ThreadCountGuard guard;
  set_num_threads(3);
  EXPECT_EQ(num_threads(), 3);
  set_num_threads(1);
  EXPECT_EQ(num_threads(), 1);
  set_num_threads(0);  // back to the default
  EXPECT_GE(num_threads(), 1);
  set_num_threads(-5);
  EXPECT_GE(num_threads(), 1);
}

TEST(ThreadPool, ParallelForCoversEveryIndexExactlyOnce) {
  tt::ThreadCountGuard guard;
  for (int threads : {1, 2, 3, 4, 8}) {
    set_num_threads(threads);
    for (int64_t begin : {0, 5, -7}) {
      for (int64_t n : {0, 1, 2, 3, 7, 64, 1000, 4097, 100003}) {
        for (int64_t grain : {1, 2, 16, 1000, 1 << 16}) {
          SCOPED_TRACE("threads " + std::to_string(threads) + " begin " + std::to_string(begin) + " n " +
                       std::to_string(n) + " grain " + std::to_string(grain));
          std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
          std::mutex mu;
          std::vector<std::pair<int64_t, int64_t>> ranges;
          parallel_for(begin, begin + n, grain, [&](int64_t b, int64_t e) {
            {
              std::lock_guard<std::mutex> lock(mu);
              ranges.emplace_back(b, e);
            }
            for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i - begin)].fetch_add(1);
          });
          for (int64_t i = 0; i < n; ++i)
            ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "index " << begin + i;
          if (n == 0) {
            EXPECT_TRUE(ranges.empty());
            continue;
          }
          // Ranges are non-empty, tile [begin, end) and are no more than the threads allow.
          std::sort(ranges.begin(), ranges.end());
          EXPECT_EQ(ranges.front().first, begin);
          EXPECT_EQ(ranges.back().second, begin + n);
          for (size_t r = 0; r < ranges.size(); ++r) {
            EXPECT_LT(ranges[r].first, ranges[r].second);
            if (r > 0) {
              EXPECT_EQ(ranges[r].first, ranges[r - 1].second);
            }
          }
          const int64_t max_chunks = std::min<int64_t>(threads, (n + grain - 1) / grain);
          EXPECT_LE(static_cast<int64_t>(ranges.size()), std::max<int64_t>(max_chunks, 1));
          if (n <= grain) {
            EXPECT_EQ(ranges.size(), 1u);  // small work stays on the caller
          }
        }
      }
    }
  }
  // Empty and reversed ranges call nothing.
  int calls = 0;
  parallel_for(10, 10, 1, [&](int64_t, int64_t) { ++calls; });
  parallel_for(10, 3, 1, [&](int64_t, int64_t) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(ThreadPool, NestedParallelForRunsInline) {
  tt::ThreadCountGuard guard;
  set_num_threads(4);
  const int64_t outer = 8, inner = 5000;
  std::vector<std::atomic<int>> hits(static_cast<size_t>(outer * inner));
  parallel_for(0, outer, 1, [&](int64_t ob, int64_t oe) {
    for (int64_t o = ob; o < oe; ++o)
      parallel_for(0, inner, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(o * inner + i)].fetch_add(1);
      });
  });
  for (size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i].load(), 1) << i;
  // Kernels called from inside a parallel region still compute the right thing.
  const Tensor x = tt::rand_tensor({100000}, 3);
  const float want = k::reduce(k::Reduce::Sum, x, {}, false).item<float>();
  std::vector<float> got(4);
  parallel_for(0, 4, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      got[static_cast<size_t>(i)] = k::reduce(k::Reduce::Sum, x, {}, false).item<float>();
  });
  for (float g : got) EXPECT_EQ(g, want);
}

TEST(ThreadPool, SplitDependsOnlyOnSizeGrainAndThreads) {
  tt::ThreadCountGuard guard;
  set_num_threads(4);
  auto split = [](int64_t n, int64_t grain) {
    std::mutex mu;
    std::vector<std::pair<int64_t, int64_t>> ranges;
    parallel_for(0, n, grain, [&](int64_t b, int64_t e) {
      std::lock_guard<std::mutex> lock(mu);
      ranges.emplace_back(b, e);
    });
    std::sort(ranges.begin(), ranges.end());
    return ranges;
  };
  for (int64_t n : {10, 1000, 99999})
    for (int64_t grain : {1, 7, 500}) EXPECT_EQ(split(n, grain), split(n, grain)) << n << " " << grain;
}

namespace deft {
namespace {
TEST(Random, VectorisedPhiloxFillEqualsOneCallPerCounter) {
  // 37 blocks: two full 16-lane chunks and a scalar tail; a counter crossing 2^32.
  for (uint64_t base : {uint64_t{0}, uint64_t{0xFFFFFFF0ull}}) {
    std::vector<uint32_t> out(4 * 37);
    philox4x32_fill(base, 0x1234567890ABCDEFull, 37, out.data());
    for (int64_t i = 0; i < 37; ++i) {
      const auto r = philox4x32(base + static_cast<uint64_t>(i), 0x1234567890ABCDEFull);
      for (int j = 0; j < 4; ++j) ASSERT_EQ(out[static_cast<size_t>(4 * i + j)], r[static_cast<size_t>(j)]) << i << "," << j;
    }
  }
}
}  // namespace
}  // namespace deft
