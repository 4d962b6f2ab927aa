#include "deft/data/loader.h"

#include "deft/data/split.h"
#include "deft/tensor/kernels.h"
#include "deft/tensor/parallel.h"

namespace deft::data {

DataLoader::DataLoader(Dataset data, LoaderOptions options) : data_(std::move(data)), opt_(std::move(options)) {
  DEFT_CHECK(opt_.batch_size > 0, "loader: batch size must be positive, got {}", opt_.batch_size);
  DEFT_CHECK(opt_.workers >= 0, "loader: workers must be >= 0, got {}", opt_.workers);
  DEFT_CHECK(data_.size() > 0, "loader: dataset '{}' is empty", data_.name);
  opt_.prefetch = std::max(opt_.prefetch, 1);
}

DataLoader::~DataLoader() { stop_workers(); }

int64_t DataLoader::batches_per_epoch() const {
  const int64_t n = data_.size();
  return opt_.drop_last ? n / opt_.batch_size : (n + opt_.batch_size - 1) / opt_.batch_size;
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  stopping_ = false;
}

void DataLoader::start_epoch(int64_t epoch) {
  stop_workers();
  epoch_ = epoch;
  const int64_t n = data_.size();
  if (opt_.shuffle) {
    // Seeded by (seed, epoch) only: every epoch is reproducible on its own.
    Generator gen(opt_.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch) + 1);
    order_ = permutation(n, gen);
  } else {
    order_.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) order_[static_cast<size_t>(i)] = i;
  }
  next_out_ = 0;
  next_build_ = 0;
  ready_.clear();
  failed_.clear();
  for (int w = 0; w < opt_.workers; ++w) workers_.emplace_back([this] { worker_loop(); });
}

Batch DataLoader::build(int64_t epoch, int64_t number) const {
  const int64_t n = data_.size();
  const int64_t begin = number * opt_.batch_size;
  const int64_t end = std::min(n, begin + opt_.batch_size);
  Batch b;
  b.number = number;
  b.indices.assign(order_.begin() + begin, order_.begin() + end);
  const Tensor idx = Tensor::from_vector(b.indices);
  if (data_.features.defined()) b.x = kernel::index_select(data_.features, 0, idx);
  if (data_.labels.defined()) b.y = kernel::index_select(data_.labels, 0, idx);
  if (opt_.transform) {
    Generator gen(opt_.seed ^ (static_cast<uint64_t>(epoch) << 40) ^ (static_cast<uint64_t>(number) * 0x2545F4914F6CDD1Dull));
    opt_.transform(b, gen);
  }
  return b;
}

void DataLoader::worker_loop() {
  SerialScope serial;  // one pool only: workers run kernels on their own thread
  while (true) {
    int64_t number;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        return stopping_ || next_build_ >= batches_per_epoch() || next_build_ < next_out_ + opt_.prefetch;
      });
      if (stopping_ || next_build_ >= batches_per_epoch()) return;
      number = next_build_++;
    }
    try {
      Batch b = build(epoch_, number);
      std::lock_guard<std::mutex> lock(mu_);
      ready_.emplace(number, std::move(b));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      failed_.emplace(number, std::current_exception());
    }
    cv_.notify_all();
  }
}

std::optional<Batch> DataLoader::next() {
  DEFT_CHECK(epoch_ >= 0, "loader: call start_epoch() before next()");
  if (next_out_ >= batches_per_epoch()) return std::nullopt;
  if (opt_.workers == 0) return build(epoch_, next_out_++);
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return failed_.count(next_out_) > 0 || ready_.count(next_out_) > 0; });
  if (auto f = failed_.find(next_out_); f != failed_.end()) std::rethrow_exception(f->second);
  Batch b = std::move(ready_.at(next_out_));
  ready_.erase(next_out_);
  ++next_out_;
  lock.unlock();
  cv_.notify_all();
  return b;
}

}  // namespace deft::data
