// A test-only worker process for tests/track/store_concurrency_test.sh: several of
// these work one study at once, one is killed mid-trial, and the checks read back
// what they left.
//
//   store_worker run URL STUDY N      N trials: start, 3 params, 3 intermediate values, complete
//   store_worker check URL STUDY N    exactly N trials numbered 0..N-1, each complete and whole
//   store_worker hang URL STUDY       start a trial, heartbeat every 0.2 s, wait to be killed
//   store_worker reap URL STUDY GRACE fail_stale_trials(GRACE, 3); prints "failed: 0 4 ..."
//   store_worker resume URL STUDY     start a trial, print it as JSON, complete it
//   store_worker show URL STUDY       one JSON line per trial
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include "deft/tensor/error.h"
#include "deft/track/study_store.h"

using namespace deft::track;
using json = nlohmann::json;

namespace {

json summary(const TrialRecord& t) {
  return {{"number", t.number},           {"state", to_string(t.state)}, {"params", t.param_json()},
          {"system_attrs", t.system_attrs}, {"values", t.values},          {"steps", t.intermediate.size()}};
}

void run(StudyStore& store, int64_t sid, int n) {
  const Distribution x = Distribution::float_range(-5, 5);
  const Distribution layers = Distribution::int_range(1, 8);
  const Distribution act = Distribution::categorical({"relu", "tanh", "gelu"});
  const auto pid = static_cast<double>(getpid());
  for (int i = 0; i < n; ++i) {
    const TrialRecord t = store.start_trial(sid);
    store.set_param(t.id, "x", std::fmod(pid * 0.37 + i, 10.0) - 5, x);
    store.set_param(t.id, "layers", 1 + (i % 8), layers);
    store.set_param(t.id, "act", i % 3, act);
    for (int step = 0; step < 3; ++step) store.report(t.id, step, {1.0 / (step + 1 + i)});
    if (!store.finish_trial(t.id, TrialState::Complete, {static_cast<double>(i)}))
      deft::fail<deft::Error>("trial {} was no longer running at its end", t.number);
  }
}

int check(StudyStore& store, int64_t sid, int n) {
  const auto trials = store.trials(sid);
  int bad = 0;
  if (static_cast<int>(trials.size()) != n) {
    std::cerr << "check: " << trials.size() << " trials, expected " << n << "\n";
    ++bad;
  }
  for (size_t i = 0; i < trials.size(); ++i) {
    const TrialRecord& t = trials[i];
    if (t.number != static_cast<int64_t>(i) || t.state != TrialState::Complete || t.params.size() != 3 ||
        t.intermediate.size() != 3 || t.values.size() != 1) {
      std::cerr << "check: trial at " << i << " is not whole: " << summary(t).dump() << "\n";
      ++bad;
    }
  }
  std::cout << "checked " << trials.size() << " trials, " << bad << " problem(s)\n";
  return bad == 0 ? 0 : 1;
}

[[noreturn]] void hang(StudyStore& store, int64_t sid) {
  const TrialRecord t = store.start_trial(sid);
  store.set_param(t.id, "lr", 0.0125, Distribution::float_range(1e-4, 1, true));
  store.set_param(t.id, "act", 2, Distribution::categorical({"relu", "tanh", "gelu"}));
  std::cout << "started " << t.number << std::endl;
  std::thread beat([&store, id = t.id] {
    for (;;) {
      store.heartbeat(id);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
  beat.join();  // never returns: the test kills this process
  std::abort();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string usage = "usage: store_worker run|check|hang|reap|resume|show URL STUDY [N|GRACE]";
  if (argc < 4) {
    std::cerr << usage << "\n";
    return 2;
  }
  const std::string mode = argv[1], url = argv[2], study = argv[3];
  try {
    auto store = open_study_store(url);
    const int64_t sid = store->create_study(study, {Direction::Minimize});
    if (mode == "run" && argc == 5) {
      run(*store, sid, std::stoi(argv[4]));
    } else if (mode == "check" && argc == 5) {
      return check(*store, sid, std::stoi(argv[4]));
    } else if (mode == "hang") {
      hang(*store, sid);
    } else if (mode == "reap" && argc == 5) {
      std::cout << "failed:";
      for (int64_t n : store->fail_stale_trials(sid, std::stod(argv[4]), 3)) std::cout << " " << n;
      std::cout << "\n";
    } else if (mode == "resume") {
      const TrialRecord t = store->start_trial(sid);
      std::cout << summary(t).dump() << "\n";
      store->finish_trial(t.id, TrialState::Complete, {0.5});
    } else if (mode == "show") {
      for (const TrialRecord& t : store->trials(sid)) std::cout << summary(t).dump() << "\n";
    } else {
      std::cerr << usage << "\n";
      return 2;
    }
  } catch (const deft::InputError& e) {
    std::cerr << "store_worker: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "store_worker: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
