#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>

#include "deft/data/loader.h"
#include "deft/data/split.h"

namespace deft::data {
namespace {

// 1000 examples, 3 imbalanced classes (600/300/100); feature = own index.
Dataset toy(int64_t n = 1000) {
  Dataset d;
  d.name = "toy";
  std::vector<float> f(static_cast<size_t>(n));
  std::vector<int64_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    f[static_cast<size_t>(i)] = static_cast<float>(i);
    y[static_cast<size_t>(i)] = i % 10 < 6 ? 0 : (i % 10 < 9 ? 1 : 2);
  }
  d.features = Tensor::from_vector(f, {n, 1});
  d.labels = Tensor::from_vector(y);
  d.class_names = {"a", "b", "c"};
  return d;
}

std::map<int64_t, int64_t> class_counts(const Dataset& d) {
  std::map<int64_t, int64_t> c;
  for (int64_t v : d.labels.to_vector<int64_t>()) c[v]++;
  return c;
}

TEST(Split, PartsAreDisjointCompleteAndSized) {
  const auto parts = split_indices(1000, {0.7, 0.2, 0.1}, 5);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].size(), 700u);
  EXPECT_EQ(parts[1].size(), 200u);
  EXPECT_EQ(parts[2].size(), 100u);
  std::set<int64_t> all;
  for (const auto& p : parts) all.insert(p.begin(), p.end());
  EXPECT_EQ(all.size(), 1000u);
  EXPECT_EQ(*all.begin(), 0);
  EXPECT_EQ(*all.rbegin(), 999);
}

TEST(Split, SeededAndStratified) {
  const Dataset d = toy();
  auto [tr1, te1] = train_test_split(d, 0.2, 42);
  auto [tr2, te2] = train_test_split(d, 0.2, 42);
  auto [tr3, te3] = train_test_split(d, 0.2, 43);
  EXPECT_EQ(te1.features.to_vector<float>(), te2.features.to_vector<float>());
  EXPECT_NE(te1.features.to_vector<float>(), te3.features.to_vector<float>());
  EXPECT_EQ(te1.size(), 200);
  EXPECT_EQ(tr1.size(), 800);
  const auto c = class_counts(te1);
  EXPECT_EQ(c.at(0), 120);
  EXPECT_EQ(c.at(1), 60);
  EXPECT_EQ(c.at(2), 20);
  // Train and test never share an example.
  const auto a = tr1.features.to_vector<float>();
  const auto b = te1.features.to_vector<float>();
  std::set<float> sa(a.begin(), a.end());
  for (float v : b) EXPECT_EQ(sa.count(v), 0u);
}

TEST(Split, KFoldCoversEveryExampleOnce) {
  const Dataset d = toy(500);
  const auto folds = kfold(d, 5, 1);
  ASSERT_EQ(folds.size(), 5u);
  std::vector<int> seen(500, 0);
  for (const auto& [train, val] : folds) {
    EXPECT_EQ(train.size() + val.size(), 500u);
    for (int64_t i : val) seen[static_cast<size_t>(i)]++;
    std::map<int64_t, int> c;
    const auto y = d.labels.to_vector<int64_t>();
    for (int64_t i : val) c[y[static_cast<size_t>(i)]]++;
    EXPECT_EQ(c[0], 60);  // 300 / 5
    EXPECT_EQ(c[2], 10);  // 50 / 5
  }
  for (int s : seen) EXPECT_EQ(s, 1);
  EXPECT_THROW(kfold(d, 1, 0), InputError);
}

TEST(Split, EnsureSplitsHoldsOutTestAndValidation) {
  DatasetSplits s{toy(), std::nullopt, std::nullopt};
  s = ensure_splits(std::move(s), {.test = 0.2, .validation = 0.1, .seed = 3});
  ASSERT_TRUE(s.test && s.validation);
  EXPECT_EQ(s.test->size(), 200);
  EXPECT_EQ(s.validation->size(), 80);
  EXPECT_EQ(s.train.size(), 720);
  EXPECT_EQ(describe_splits(s), "train 720 · validation 80 · test 200");
}

std::vector<std::vector<float>> collect(DataLoader& l, int64_t epoch) {
  l.start_epoch(epoch);
  std::vector<std::vector<float>> out;
  while (auto b = l.next()) out.push_back(b->x.to_vector<float>());
  return out;
}

TEST(Loader, EachEpochCoversTheDataOnceInSeededOrder) {
  DataLoader l(toy(), {.batch_size = 64, .shuffle = true, .seed = 9, .workers = 2});
  EXPECT_EQ(l.batches_per_epoch(), 16);
  const auto e0 = collect(l, 0);
  ASSERT_EQ(e0.size(), 16u);
  EXPECT_EQ(e0.back().size(), 1000u - 15 * 64);
  std::multiset<float> all;
  for (const auto& b : e0) all.insert(b.begin(), b.end());
  EXPECT_EQ(all.size(), 1000u);
  EXPECT_EQ(std::set<float>(all.begin(), all.end()).size(), 1000u);
  const auto e1 = collect(l, 1);
  EXPECT_NE(e0, e1);                // reshuffled
  EXPECT_EQ(collect(l, 0), e0);     // but epoch 0 is reproducible
}

TEST(Loader, SameBatchesWhateverTheWorkerCount) {
  auto transform = [](Batch& b, Generator& gen) {
    b.x = b.x.clone();
    float* p = b.x.data<float>();
    for (int64_t i = 0; i < b.x.numel(); ++i) p[i] += static_cast<float>(gen.next_double());
  };
  std::vector<std::vector<std::vector<float>>> results;
  for (int workers : {0, 1, 3}) {
    DataLoader l(toy(), {.batch_size = 50, .seed = 4, .workers = workers, .prefetch = 2, .transform = transform});
    results.push_back(collect(l, 2));
  }
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
}

TEST(Loader, DropLastAndNoShuffle) {
  DataLoader l(toy(100), {.batch_size = 30, .shuffle = false, .drop_last = true, .workers = 1});
  const auto e = collect(l, 0);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[1][0], 30.0f);
}

TEST(Loader, PrefetchIsBounded) {
  std::atomic<int> built{0};
  DataLoader l(toy(), {.batch_size = 10, .workers = 2, .prefetch = 3,
                       .transform = [&](Batch&, Generator&) { built++; }});
  l.start_epoch(0);
  auto first = l.next();
  ASSERT_TRUE(first);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_LE(built.load(), 1 + 3 + 2);  // consumed + prefetch window (+ in flight)
}

TEST(Loader, AFailingTransformIsAnErrorNotAHang) {
  DataLoader l(toy(), {.batch_size = 10, .workers = 2, .transform = [](Batch& b, Generator&) {
                         if (b.number == 3) throw InputError("bad example in batch 3");
                       }});
  l.start_epoch(0);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(l.next());
  EXPECT_THROW(l.next(), InputError);
}

TEST(Loader, DestroyedMidEpochWithoutHanging) {
  auto l = std::make_unique<DataLoader>(toy(), LoaderOptions{.batch_size = 8, .workers = 3});
  l->start_epoch(0);
  ASSERT_TRUE(l->next());
  l.reset();
  SUCCEED();
}

}  // namespace
}  // namespace deft::data
