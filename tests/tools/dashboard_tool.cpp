// Test and benchmark helper for the dashboard (tests/track/dashboard_chromium_test.sh,
// bench/dashboard_latency.sh).
//
//   dashboard_tool seed URL STUDY N [--running K] [--run NAME]
//       N trials through the StudyStore, as a search writes them: 4 parameters, 5
//       intermediate values, about 70% complete, 20% pruned, 5% failed; the last K left
//       running. --run adds a finished run with 6 epochs of loss/accuracy metrics.
//       Prints "trials N complete C pruned P fail F running R seconds S".
//   dashboard_tool latency HOST PORT REQUESTS PATH...
//       per path: the first request's time, then REQUESTS more on one keep-alive
//       connection (gzip accepted, as a browser does); prints p50/p95/p99 in ms.
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "deft/tensor/error.h"
#include "deft/track/run_store.h"
#include "deft/track/study_store.h"

using namespace deft::track;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int seed(const std::string& url, const std::string& study, int n, int running, const std::string& run_name) {
  const auto start = std::chrono::steady_clock::now();
  auto store = open_study_store(url);
  const int64_t sid = store->create_study(study, {Direction::Maximize});
  const auto lr = Distribution::float_range(1e-5, 1e-1, true);
  const auto opt = Distribution::categorical({"adam", "sgd", "rmsprop", "adamw"});
  const auto layers = Distribution::int_range(1, 6);
  const auto dropout = Distribution::float_range(0, 0.5);
  int counts[5] = {};
  for (int i = 0; i < n; ++i) {
    const TrialRecord t = store->start_trial(sid);
    const double u = std::fmod(i * 0.618033988749895, 1.0);  // a low-discrepancy stand-in for a sampler
    const double v = std::fmod(i * 0.414213562373095, 1.0);
    store->set_param(t.id, "lr", std::exp(std::log(1e-5) + u * (std::log(1e-1) - std::log(1e-5))), lr);
    store->set_param(t.id, "optimizer", i % 4, opt);
    store->set_param(t.id, "layers", 1 + (i * 7) % 6, layers);
    store->set_param(t.id, "dropout", 0.5 * v, dropout);
    const double final_value = 0.95 - 0.3 * std::abs(u - 0.6) - 0.1 * v - 0.01 * (i % 4);
    TrialState state = TrialState::Complete;
    if (i >= n - running) state = TrialState::Running;
    else if (i % 20 == 7) state = TrialState::Fail;
    else if (i % 5 == 2) state = TrialState::Pruned;
    const int steps = state == TrialState::Pruned ? 2 : 5;
    for (int step = 1; step <= steps; ++step) store->report(t.id, step, {final_value * (1 - 0.5 / step)});
    if (state == TrialState::Complete) store->finish_trial(t.id, state, {final_value});
    else if (state != TrialState::Running) store->finish_trial(t.id, state, {});
    ++counts[static_cast<int>(state)];
  }
  if (!run_name.empty()) {
    auto runs = open_run_store(url);
    const int64_t id = runs->create_run({.name = run_name, .command = "train"});
    runs->set_params(id, {{"model", "mlp"}, {"lr", 0.001}, {"batch_size", 64}});
    std::vector<MetricPoint> points;
    for (int64_t epoch = 1; epoch <= 6; ++epoch) {
      const double e = static_cast<double>(epoch);
      for (const auto& [key, value] : std::vector<std::pair<std::string, double>>{
               {"loss", 0.9 / e}, {"val_loss", 1.0 / e + 0.02 * e}, {"accuracy", 1 - 0.3 / e}, {"val_accuracy", 0.95 - 0.3 / e}})
        points.push_back({key, epoch, value, unix_now()});
    }
    runs->log_metrics(id, points);
    runs->finish_run(id, RunStatus::Finished, {{"test_accuracy", 0.881}, {"test_loss", 0.33}});
  }
  std::printf("trials %d complete %d pruned %d fail %d running %d seconds %.2f\n", n,
              counts[static_cast<int>(TrialState::Complete)], counts[static_cast<int>(TrialState::Pruned)],
              counts[static_cast<int>(TrialState::Fail)], counts[static_cast<int>(TrialState::Running)],
              seconds_since(start));
  return 0;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const double at = p / 100 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(at);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (at - static_cast<double>(lo));
}

int latency(const std::string& host, int port, int requests, const std::vector<std::string>& paths) {
  httplib::Client c(host, port);
  c.set_keep_alive(true);
  c.set_tcp_nodelay(true);  // as browsers do
  c.set_decompress(false);  // bytes on the wire; the timing leaves out inflating
  c.set_read_timeout(120);
  const httplib::Headers gzip{{"Accept-Encoding", "gzip"}};
  std::printf("%-72s %9s %8s %8s %8s %9s\n", "request", "first ms", "p50 ms", "p95 ms", "p99 ms", "wire B");
  int failures = 0;
  for (const auto& path : paths) {
    std::vector<double> ms;
    double first = 0;
    size_t bytes = 0;
    for (int k = 0; k <= requests; ++k) {
      const auto t = std::chrono::steady_clock::now();
      auto res = c.Get(path, gzip);
      const double took = seconds_since(t) * 1000;
      if (!res || res->status != 200) {
        std::fprintf(stderr, "%s: %s\n", path.c_str(), res ? std::to_string(res->status).c_str() : "no response");
        ++failures;
        break;
      }
      if (k == 0) {
        first = took;
        bytes = res->body.size();
      } else {
        ms.push_back(took);
      }
    }
    if (ms.empty()) continue;
    std::printf("%-72s %9.2f %8.2f %8.2f %8.2f %9zu\n", path.c_str(), first, percentile(ms, 50), percentile(ms, 95),
                percentile(ms, 99), bytes);
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string usage =
      "usage: dashboard_tool seed URL STUDY N [--running K] [--run NAME]\n"
      "       dashboard_tool latency HOST PORT REQUESTS PATH...";
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() >= 4 && args[0] == "seed") {
      int running = 0;
      std::string run_name;
      for (size_t i = 4; i + 1 < args.size(); i += 2) {
        if (args[i] == "--running") running = std::stoi(args[i + 1]);
        else if (args[i] == "--run") run_name = args[i + 1];
        else throw deft::InputError("unknown option " + args[i]);
      }
      return seed(args[1], args[2], std::stoi(args[3]), running, run_name);
    }
    if (args.size() >= 5 && args[0] == "latency")
      return latency(args[1], std::stoi(args[2]), std::stoi(args[3]), {args.begin() + 4, args.end()});
  } catch (const std::exception& e) {
    std::cerr << "dashboard_tool: error: " << e.what() << "\n";
    return 1;
  }
  std::cerr << usage << "\n";
  return 2;
}
