// `deft serve`: a saved model behind HTTP, speaking KServe v2 (the Open Inference
// Protocol) and TF-Serving's REST predict, JSON in and out (serve_protocol.h).
//
//   ModelServer s({.model = "fashion.deft", .port = 0});  // 0: any free port
//   s.start();                                             // serves on background threads
//   std::cout << s.url();                                  // http://127.0.0.1:41234
//   s.stop();                                              // in-flight requests finish first
//
// Routes (the model is named after its file, fashion.deft -> "fashion", or options.name):
//   GET  /v2/health/live, /v2/health/ready        200, or 503 while not ready
//   GET  /v2                                      server metadata
//   GET  /v2/models/NAME[/versions/V]             model metadata
//   GET  /v2/models/NAME[/versions/V]/ready
//   POST /v2/models/NAME[/versions/V]/infer       KServe v2 inference
//   GET  /v1/models/NAME[/versions/V]             TF-Serving model status
//   GET  /v1/models/NAME[/versions/V]/metadata
//   POST /v1/models/NAME[/versions/V]:predict     TF-Serving predict
// Every error is JSON {"error": "..."}: 400 bad input, 404 unknown model/version/route,
// 405 wrong method, 413 body over max_body, 503 overloaded (with Retry-After) or stopping.
//
// Requests go through a Batcher (serve_batcher.h): one model call for many concurrent
// requests. The model file is watched (every reload_interval_s): when it is replaced
// (atomically: write elsewhere, rename over) the new one is loaded in the background
// and swapped in between batches, its version counting up; a file that fails to load
// is logged and the old model keeps serving.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "deft/deploy/infer.h"
#include "deft/deploy/serve_batcher.h"

namespace deft::deploy {

using PredictorLoader = std::function<std::unique_ptr<Predictor>(const std::string& path)>;

struct ServeOptions {
  std::string model;               // the .deft file
  std::string name;                // the model's name in URLs; "" -> the file's stem
  std::string host = "127.0.0.1";  // loopback only unless asked
  int port = 8080;                 // 0: pick a free port (port() tells which)
  int64_t max_batch = 64;          // examples per model call
  double max_delay_ms = 2;         // how long a batch may wait to fill
  int64_t max_queue = 4096;        // examples waiting at most; more -> 503
  size_t max_body = 16u << 20;     // request bytes; more -> 413
  int threads = 0;                 // the model's intra-op threads (0: the process default)
  int workers = 64;                // HTTP threads (one per open connection)
  double reload_interval_s = 1;    // how often the model file is checked; 0: never
  PredictorLoader loader;          // how a model file is loaded; empty: Predictor::load
};

// `fashion.deft` -> "fashion"; characters other than [A-Za-z0-9._-] become '_'.
std::string model_name_for(const std::string& path);

class ModelServer {
 public:
  // Loads the model (InputError naming the file when it cannot); serves nothing until start().
  explicit ModelServer(ServeOptions options);
  ~ModelServer();  // stops
  ModelServer(const ModelServer&) = delete;
  ModelServer& operator=(const ModelServer&) = delete;

  // Binds (InputError naming host and port when it cannot) and serves on background threads.
  void start();
  // Stops accepting connections, answers every request already received, then returns.
  // Idempotent; from any thread but a request handler's.
  void stop();

  int port() const;
  std::string url() const;  // "http://HOST:PORT"
  const std::string& name() const;
  std::shared_ptr<const ServedModel> model() const;  // what answers now
  BatcherStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace deft::deploy
