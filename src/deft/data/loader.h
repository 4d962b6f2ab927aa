// The data loader: per-epoch seeded shuffling, batching, drop_last, and
// background prefetch on worker threads so the trainer never waits on data.
//
//   DataLoader loader(train, {.batch_size = 64, .shuffle = true, .seed = 0, .workers = 2});
//   for (int epoch = 0; epoch < 10; ++epoch) {
//     loader.start_epoch(epoch);
//     while (auto batch = loader.next()) { ... batch->x, batch->y ... }
//   }
//
// Batches come out in order. The shuffle of epoch e depends only on (seed, e),
// and the transform of batch b gets a Generator seeded from (seed, e, b), so the
// batches are identical whatever the number of workers. Workers run kernels
// single-threaded (SerialScope) and never start a second thread pool.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "deft/data/dataset.h"
#include "deft/tensor/random.h"

namespace deft::data {

struct Batch {
  Tensor x;                      // features of the examples, in batch order
  Tensor y;                      // their labels (undefined for unlabeled data)
  std::vector<int64_t> indices;  // positions in the dataset
  int64_t number = 0;            // batch number within the epoch
};

// Applied to each batch on a worker thread (augmentation, scaling...).
using BatchTransform = std::function<void(Batch& batch, Generator& gen)>;

struct LoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = true;
  bool drop_last = false;
  uint64_t seed = 0;
  int workers = 1;       // background threads; 0 = build batches on the caller's thread
  int prefetch = 4;      // batches built ahead of the consumer
  BatchTransform transform;
};

class DataLoader {
 public:
  DataLoader(Dataset data, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  void start_epoch(int64_t epoch);
  std::optional<Batch> next();  // empty at the end of the epoch
  int64_t batches_per_epoch() const;
  int64_t size() const { return data_.size(); }
  const Dataset& dataset() const { return data_; }

 private:
  Batch build(int64_t epoch, int64_t number) const;
  void stop_workers();
  void worker_loop();

  Dataset data_;
  LoaderOptions opt_;
  std::vector<int64_t> order_;
  int64_t epoch_ = -1;
  int64_t next_out_ = 0;  // next batch handed to the consumer

  std::mutex mu_;
  std::condition_variable cv_;
  int64_t next_build_ = 0;  // next batch a worker will claim
  std::map<int64_t, Batch> ready_;
  std::map<int64_t, std::exception_ptr> failed_;  // batches whose build threw
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace deft::data
