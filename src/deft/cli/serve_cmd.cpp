// deft serve: a model behind HTTP (KServe v2 and TF-Serving REST), until SIGINT/SIGTERM.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <memory>

#include "deft/cli/commands.h"
#include "deft/deploy/serve.h"
#include "deft/tensor/error.h"

namespace deft::cli {

Command add_serve_command(CLI::App& app) {
  auto o = std::make_shared<deploy::ServeOptions>();
  Command c;
  c.app = app.add_subcommand("serve",
                             "Serve a model over HTTP: KServe v2 (/v2/models/NAME/infer) and TF-Serving "
                             "(/v1/models/NAME:predict), with dynamic batching and hot reload");
  c.app->add_option("--model", o->model, "Model file (.deft); replacing it (atomically) reloads it")
      ->required();
  c.app->add_option("--name", o->name, "The model's name in URLs (default: the file name without .deft)");
  c.app->add_option("--host", o->host, "Address to listen on (default 127.0.0.1: this machine only)");
  c.app->add_option("--port", o->port, "Port (default 8080; 0 picks a free one, printed at start)")
      ->check(CLI::Range(0, 65535));
  c.app->add_option("--max-batch", o->max_batch, "Most examples per model call (default 64)")
      ->check(CLI::PositiveNumber);
  c.app
      ->add_option("--max-delay-ms", o->max_delay_ms,
                   "Longest a request waits for others to batch with (default 2; 0: never waits)")
      ->check(CLI::NonNegativeNumber);
  c.app
      ->add_option("--queue", o->max_queue,
                   "Most examples waiting for the model; beyond it 503 (default 4096)")
      ->check(CLI::PositiveNumber);
  c.app
      ->add_option("--max-body", o->max_body,
                   "Largest request body in bytes; beyond it 413 (default 16777216)")
      ->check(CLI::PositiveNumber);
  c.app
      ->add_option("--threads", o->threads,
                   "The model's compute threads (default: DEFT_NUM_THREADS or all cores)")
      ->check(CLI::NonNegativeNumber);
  c.app->add_option("--workers", o->workers, "HTTP threads, one per open connection (default 64)")
      ->check(CLI::PositiveNumber);
  c.app
      ->add_option("--reload-interval", o->reload_interval_s,
                   "Seconds between checks of the model file for a replacement (default 1; 0: never)")
      ->check(CLI::NonNegativeNumber);
  c.run = [o]() -> int {
    // Signals are taken by sigwait below, not by a handler: every thread started from
    // here on (HTTP workers, batcher, compute threads) inherits the blocked mask.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    deploy::ModelServer server(*o);
    server.start();
    const auto m = server.model();
    std::printf("deft serve: model %s (%s, input [-1", server.name().c_str(), m->info.architecture.c_str());
    for (int64_t d : m->info.input_shape) std::printf(",%lld", static_cast<long long>(d));
    std::printf("], %lld %s) on %s\n", static_cast<long long>(m->info.num_outputs),
                m->info.classification ? "classes" : "outputs", server.url().c_str());
    std::fflush(stdout);
    int sig = 0;
    sigwait(&stop_signals, &sig);
    std::fprintf(stderr, "deft serve: %s: finishing the requests in flight\n",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT");
    server.stop();
    const auto s = server.stats();
    std::fprintf(stderr, "deft serve: stopped after %lld examples in %lld batches (largest %lld)\n",
                 static_cast<long long>(s.examples), static_cast<long long>(s.batches),
                 static_cast<long long>(s.largest_batch));
    return 0;
  };
  return c;
}

}  // namespace deft::cli
