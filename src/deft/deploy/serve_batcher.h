// Dynamic batching for `deft serve`: request threads hand in examples and wait; one
// thread takes whole requests off the queue, up to max_batch examples, runs the model
// once and hands each request its rows back.
//
//   Batcher b(std::move(predictor), {.max_batch = 64, .max_delay_ms = 2, .max_queue = 4096});
//   BatchResult r = b.run(std::move(examples), shape_checked_against);  // blocks
//   r.outputs   // examples.n * r.model->info.num_outputs floats
//
// When to run: as soon as max_batch examples wait, or when the oldest has waited
// max_delay_ms, or at once when no request is being read (the `arriving` count): a lone
// client never pays the delay, and under load batches form while the model is busy.
// The queue is bounded in examples: a request that does not fit is refused at once
// (ProtocolError 503), so overload never grows memory. Models are row-independent, so
// batched results equal unbatched ones.
//
// replace() installs a new model; the batch thread swaps it in between batches, and
// a request validated against the old input shape that no longer fits is answered 503
// (retry). stop() finishes everything queued, then refuses new work.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "deft/deploy/infer.h"
#include "deft/deploy/serve_protocol.h"

namespace deft::deploy {

struct BatcherOptions {
  int64_t max_batch = 64;    // examples per model call
  double max_delay_ms = 2;   // longest wait for a batch to fill while requests are arriving
  int64_t max_queue = 4096;  // examples waiting at most; more -> 503
};

// The model a batch ran with: its description and a version counting loads (1, 2, ...).
struct ServedModel {
  ModelInfo info;
  int64_t version = 1;
};

struct BatchResult {
  std::vector<float> outputs;
  std::shared_ptr<const ServedModel> model;  // the model that computed them
};

struct BatcherStats {
  int64_t batches = 0, examples = 0, largest_batch = 0;  // model calls, examples run, most in one call
  int64_t queued = 0;                                    // examples waiting now
};

class Batcher {
 public:
  Batcher(std::unique_ptr<Predictor> predictor, BatcherOptions options);
  ~Batcher();  // stop()
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // The model requests are validated against now.
  std::shared_ptr<const ServedModel> model() const;

  // Blocks until the examples ran. `input_shape` is the per-example shape they were
  // checked against. ProtocolError 503 when the queue is full or the batcher stopped,
  // 413 when the request alone exceeds max_queue; a model's InputError becomes 400 and
  // any other failure 500.
  // `announced`: the caller called arriving() and this call is its departure.
  BatchResult run(Examples examples, const Shape& input_shape, bool announced = false);

  // A request is being read and will probably call run() soon: the batch thread waits
  // (up to max_delay_ms) for it. Each arriving() ends with run(..., true) or departed().
  void arriving();
  void departed();

  void replace(std::unique_ptr<Predictor> predictor);  // swapped in between batches
  void stop();                                         // drains the queue; idempotent
  BatcherStats stats() const;

 private:
  struct Job;
  void loop();

  BatcherOptions o_;
  std::unique_ptr<Predictor> predictor_;  // the batch thread's alone
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  int64_t queued_examples_ = 0;
  int64_t arriving_ = 0;
  bool stopping_ = false;
  std::unique_ptr<Predictor> pending_;
  std::shared_ptr<const ServedModel> model_;
  BatcherStats stats_;
  std::thread thread_;
};

}  // namespace deft::deploy
