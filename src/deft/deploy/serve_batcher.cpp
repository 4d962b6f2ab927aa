#include "deft/deploy/serve_batcher.h"

#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <future>

#include "deft/tensor/error.h"

namespace deft::deploy {

using Clock = std::chrono::steady_clock;

struct Batcher::Job {
  Examples examples;
  Shape input_shape;
  Clock::time_point queued_at;
  std::promise<BatchResult> done;
};

Batcher::Batcher(std::unique_ptr<Predictor> predictor, BatcherOptions options) : o_(options) {
  DEFT_CHECK(predictor != nullptr, "serve: no model");
  DEFT_CHECK(o_.max_batch > 0, "serve: max batch must be positive, got {}", o_.max_batch);
  DEFT_CHECK(o_.max_queue > 0, "serve: queue must be positive, got {}", o_.max_queue);
  DEFT_CHECK(o_.max_delay_ms >= 0, "serve: max delay must be >= 0 ms, got {}", o_.max_delay_ms);
  predictor_ = std::move(predictor);
  model_ = std::make_shared<const ServedModel>(ServedModel{predictor_->info(), 1});
  thread_ = std::thread([this] { loop(); });
}

Batcher::~Batcher() { stop(); }

std::shared_ptr<const ServedModel> Batcher::model() const {
  std::lock_guard<std::mutex> hold(mu_);
  return model_;
}

void Batcher::arriving() {
  std::lock_guard<std::mutex> hold(mu_);
  ++arriving_;
}

void Batcher::departed() {
  {
    std::lock_guard<std::mutex> hold(mu_);
    --arriving_;
  }
  cv_.notify_all();  // the batch thread may be waiting for this request
}

void Batcher::replace(std::unique_ptr<Predictor> predictor) {
  {
    std::lock_guard<std::mutex> hold(mu_);
    pending_ = std::move(predictor);
  }
  cv_.notify_all();
}

BatcherStats Batcher::stats() const {
  std::lock_guard<std::mutex> hold(mu_);
  BatcherStats s = stats_;
  s.queued = queued_examples_;
  return s;
}

BatchResult Batcher::run(Examples examples, const Shape& input_shape, bool announced) {
  if (examples.n == 0) {
    if (announced) departed();
    return {{}, model()};
  }
  auto job = std::make_shared<Job>();
  const int64_t n = examples.n;
  job->examples = std::move(examples);
  job->input_shape = input_shape;
  std::future<BatchResult> result = job->done.get_future();
  {
    std::lock_guard<std::mutex> hold(mu_);
    if (announced) --arriving_;
    if (stopping_) throw ProtocolError(503, "the server is shutting down");
    if (n > o_.max_queue)
      throw ProtocolError(
          413, fmt::format("the request holds {} examples; this server takes at most {} per request "
                           "(--queue)",
                           n, o_.max_queue));
    if (queued_examples_ + n > o_.max_queue)
      throw ProtocolError(503,
                          fmt::format("overloaded: {} examples are already waiting (--queue {}); retry later",
                                      queued_examples_, o_.max_queue));
    job->queued_at = Clock::now();
    queue_.push_back(job);
    queued_examples_ += n;
  }
  cv_.notify_all();
  return result.get();  // rethrows the job's failure
}

void Batcher::stop() {
  {
    std::lock_guard<std::mutex> hold(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Batcher::loop() {
  const auto max_delay =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(o_.max_delay_ms));
  std::vector<float> in, out;
  for (;;) {
    std::vector<std::shared_ptr<Job>> batch;
    std::unique_ptr<Predictor> next;
    {
      std::unique_lock<std::mutex> hold(mu_);
      cv_.wait(hold, [&] { return !queue_.empty() || stopping_ || pending_; });
      if (queue_.empty() && stopping_) return;
      if (!queue_.empty()) {
        // Wait for the batch to fill while requests are still being read, at most
        // max_delay after the oldest queued one arrived.
        const auto deadline = queue_.front()->queued_at + max_delay;
        cv_.wait_until(hold, deadline,
                       [&] { return queued_examples_ >= o_.max_batch || arriving_ == 0 || stopping_; });
        int64_t total = 0;
        while (!queue_.empty() && (batch.empty() || total + queue_.front()->examples.n <= o_.max_batch)) {
          total += queue_.front()->examples.n;
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        queued_examples_ -= total;
      }
      next = std::move(pending_);
    }
    if (next) {  // between batches: nothing is running on the old model
      auto m = std::make_shared<ServedModel>(ServedModel{next->info(), 0});
      predictor_ = std::move(next);
      std::lock_guard<std::mutex> hold(mu_);
      m->version = model_->version + 1;
      model_ = std::move(m);
    }
    if (batch.empty()) continue;

    const std::shared_ptr<const ServedModel> model = [&] {
      std::lock_guard<std::mutex> hold(mu_);
      return model_;
    }();
    const int64_t per = shape_numel(model->info.input_shape), k = model->info.num_outputs;
    // Requests checked against a model's input that the current model no longer has.
    std::vector<std::shared_ptr<Job>> runnable;
    for (auto& job : batch) {
      if (job->input_shape == model->info.input_shape) {
        runnable.push_back(std::move(job));
      } else {
        job->done.set_exception(std::make_exception_ptr(ProtocolError(
            503, "the model was reloaded with a different input shape while the request waited; retry")));
      }
    }
    if (runnable.empty()) continue;
    int64_t total = 0;
    for (const auto& job : runnable) total += job->examples.n;
    const float* src = runnable.front()->examples.values.data();
    if (runnable.size() > 1) {  // one request alone runs from its own buffer
      in.resize(static_cast<size_t>(total * per));
      float* dst = in.data();
      for (const auto& job : runnable) {
        std::memcpy(dst, job->examples.values.data(), job->examples.values.size() * sizeof(float));
        dst += job->examples.values.size();
      }
      src = in.data();
    }
    out.resize(static_cast<size_t>(total * k));
    std::exception_ptr failure;
    try {
      predictor_->predict(src, total, out.data());
    } catch (const InputError& e) {
      failure = std::make_exception_ptr(ProtocolError(400, e.what()));
    } catch (const std::exception& e) {
      failure = std::make_exception_ptr(ProtocolError(500, fmt::format("inference failed: {}", e.what())));
    }
    {
      std::lock_guard<std::mutex> hold(mu_);
      ++stats_.batches;
      stats_.examples += total;
      stats_.largest_batch = std::max(stats_.largest_batch, total);
    }
    int64_t row = 0;
    for (auto& job : runnable) {
      const int64_t n = job->examples.n;
      if (failure) {
        job->done.set_exception(failure);
      } else {
        BatchResult r{std::vector<float>(out.begin() + row * k, out.begin() + (row + n) * k), model};
        job->done.set_value(std::move(r));
      }
      row += n;
    }
  }
}

}  // namespace deft::deploy
