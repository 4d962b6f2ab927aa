#include "deft/tune/study.h"

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <thread>

#include "deft/tensor/error.h"
#include "deft/tensor/parallel.h"

namespace deft::tune {

using json = nlohmann::json;
using track::unix_now;

bool better(double a, double b, Direction d) { return d == Direction::Maximize ? a > b : a < b; }

json trial_json(const TrialRecord& t) {
  json values = json::array();
  for (double v : t.values) values.push_back(std::isfinite(v) ? json(v) : json(nullptr));
  json inter = json::object();
  for (const auto& [step, vs] : t.intermediate) {
    json a = json::array();
    for (double v : vs) a.push_back(std::isfinite(v) ? json(v) : json(nullptr));
    inter[std::to_string(step)] = a.size() == 1 ? a[0] : a;
  }
  return {{"number", t.number},
          {"state", track::to_string(t.state)},
          {"values", values},
          {"params", t.param_json()},
          {"intermediate", inter},
          {"user_attrs", t.user_attrs},
          {"system_attrs", t.system_attrs},
          {"start_time", t.start_time},
          {"end_time", t.end_time},
          {"duration_s", t.end_time > 0 ? t.end_time - t.start_time : unix_now() - t.start_time}};
}

// ---- Trial ----------------------------------------------------------------------------------

Trial::Trial(Study& study, TrialRecord record) : study_(study), rec_(std::move(record)) {}

json Trial::suggest(const std::string& name, const Distribution& d) {
  auto have = rec_.params.find(name);
  if (have != rec_.params.end()) {
    // A retried or enqueued trial: its parameters are fixed already.
    const auto dist = rec_.distributions.find(name);
    if (dist != rec_.distributions.end() && (dist->second == d || d.contains(have->second)))
      return d.external(have->second);
    fail("trial {}: parameter '{}' was suggested with {} before, now with {}", rec_.number, name,
         dist == rec_.distributions.end() ? "?" : dist->second.to_json().dump(), d.to_json().dump());
  }
  double v = d.low;
  if (!d.single()) {
    std::lock_guard<std::mutex> lk(study_.sampler_mu_);
    const StudyView view = study_.view();
    if (!relative_done_) {
      relative_space_ = study_.sampler_->infer_relative_search_space(view, rec_);
      if (!relative_space_.empty()) relative_ = study_.sampler_->sample_relative(view, rec_, relative_space_);
      relative_done_ = true;
    }
    auto rel = relative_.find(name);
    auto sp = relative_space_.find(name);
    if (rel != relative_.end() && sp != relative_space_.end() && sp->second == d && d.contains(rel->second))
      v = rel->second;
    else
      v = study_.sampler_->sample_independent(view, rec_, name, d);
  }
  DEFT_INTERNAL_CHECK(d.contains(v), "sampler {} suggested {} for '{}', outside {}", study_.sampler_->name(), v, name,
                      d.to_json().dump());
  {
    std::lock_guard<std::mutex> lk(study_.store_mu_);
    study_.store_->set_param(rec_.id, name, v, d);
  }
  rec_.params[name] = v;
  rec_.distributions[name] = d;
  return d.external(v);
}

double Trial::suggest_float(const std::string& name, double low, double high, bool log, double step) {
  return suggest(name, Distribution::float_range(low, high, log, step)).get<double>();
}
int64_t Trial::suggest_int(const std::string& name, int64_t low, int64_t high, bool log, int64_t step) {
  return suggest(name, Distribution::int_range(low, high, log, step)).get<int64_t>();
}
json Trial::suggest_categorical(const std::string& name, const std::vector<json>& choices) {
  return suggest(name, Distribution::categorical(choices));
}
std::string Trial::suggest_categorical(const std::string& name, const std::vector<std::string>& choices) {
  std::vector<json> c(choices.begin(), choices.end());
  return suggest(name, Distribution::categorical(c)).get<std::string>();
}

void Trial::report(double value, int64_t step) { report(std::vector<double>{value}, step); }

void Trial::report(const std::vector<double>& values, int64_t step) {
  DEFT_CHECK(values.size() == study_.directions_.size(), "trial {}: reported {} values for a study of {} objectives",
             rec_.number, values.size(), study_.directions_.size());
  {
    std::lock_guard<std::mutex> lk(study_.store_mu_);
    study_.store_->report(rec_.id, step, values);
  }
  rec_.intermediate[step] = values;
}

bool Trial::should_stop() const { return study_.stopping(); }

bool Trial::should_prune() {
  if (should_stop()) {
    set_user_attr("stopped", study_.stop_.load() ? "stop" : "deadline");
    return true;
  }
  if (!study_.pruner_ || rec_.intermediate.empty()) return false;
  json attrs = json::object();
  bool prune = false;
  {
    const StudyView view = study_.view();
    prune = study_.pruner_->prune(view, rec_, attrs);
  }
  if (!attrs.empty()) {
    std::lock_guard<std::mutex> lk(study_.store_mu_);
    for (auto it = attrs.begin(); it != attrs.end(); ++it) {
      study_.store_->set_trial_system_attr(rec_.id, it.key(), it.value());
      rec_.system_attrs[it.key()] = it.value();
    }
  }
  return prune;
}

void Trial::set_user_attr(const std::string& key, const json& v) {
  {
    std::lock_guard<std::mutex> lk(study_.store_mu_);
    study_.store_->set_trial_user_attr(rec_.id, key, v);
  }
  rec_.user_attrs[key] = v;
}

// ---- Study ----------------------------------------------------------------------------------

Study::Study(std::shared_ptr<track::StudyStore> store, const std::string& name, const std::vector<Direction>& directions,
             std::unique_ptr<Sampler> sampler, std::unique_ptr<Pruner> pruner)
    : store_(std::move(store)), name_(name), directions_(directions), sampler_(std::move(sampler)),
      pruner_(std::move(pruner)) {
  DEFT_CHECK(!name_.empty(), "study: the name must not be empty");
  DEFT_CHECK(!directions_.empty(), "study '{}': needs at least one objective direction", name_);
  if (!sampler_) sampler_ = make_sampler("tpe");
  id_ = store_->create_study(name_, directions_);
}

Study::~Study() = default;

bool Study::stopping() const { return stop_.load() || (deadline_ > 0 && unix_now() >= deadline_); }

std::vector<TrialRecord> Study::trials() const {
  std::lock_guard<std::mutex> lk(store_mu_);
  return store_->trials(id_);
}

StudyView Study::view() const { return StudyView{name_, directions_, trials()}; }

TrialRecord Study::best_trial() const {
  DEFT_CHECK(directions_.size() == 1, "study '{}' has {} objectives: use best_trials() for its Pareto front", name_,
             directions_.size());
  std::optional<TrialRecord> best;
  for (auto& t : trials())
    if (t.state == TrialState::Complete && !t.values.empty() && std::isfinite(t.values[0]) &&
        (!best || better(t.values[0], best->values[0], directions_[0])))
      best = t;
  DEFT_CHECK(best.has_value(), "study '{}' has no complete trial yet", name_);
  return *best;
}

std::vector<TrialRecord> Study::best_trials() const {
  std::vector<TrialRecord> complete;
  for (auto& t : trials())
    if (t.state == TrialState::Complete && t.values.size() == directions_.size()) complete.push_back(t);
  if (complete.empty()) return {};
  std::vector<std::vector<double>> vals;
  for (auto& t : complete) vals.push_back(t.values);
  const std::vector<int> rank = pareto_ranks(vals, directions_);
  std::vector<TrialRecord> front;
  for (size_t i = 0; i < complete.size(); ++i)
    if (rank[i] == 0) front.push_back(complete[i]);
  return front;
}

Trial Study::ask() {
  std::lock_guard<std::mutex> lk(store_mu_);
  return Trial(*this, store_->start_trial(id_));
}

void Study::tell(Trial& trial, TrialState state, const std::vector<double>& values) {
  std::vector<double> v = values;
  if (state == TrialState::Pruned && v.empty() && !trial.rec_.intermediate.empty())
    v = trial.rec_.intermediate.rbegin()->second;
  if (state == TrialState::Complete)
    DEFT_CHECK(v.size() == directions_.size(), "trial {}: {} values for a study of {} objectives", trial.number(),
               v.size(), directions_.size());
  std::lock_guard<std::mutex> lk(store_mu_);
  if (store_->finish_trial(trial.rec_.id, state, v)) {
    trial.rec_.state = state;
    trial.rec_.values = v;
    trial.rec_.end_time = unix_now();
  } else {
    trial.rec_ = store_->trial(trial.rec_.id);  // failed meanwhile by another process (missed heartbeats)
  }
}

std::vector<int64_t> Study::fail_stale_trials(double stale_after_s, int max_retries) {
  std::lock_guard<std::mutex> lk(store_mu_);
  return store_->fail_stale_trials(id_, stale_after_s, max_retries);
}

TrialRecord Study::run_one(const Objective& objective, int threads) {
  Trial trial = ask();
  {
    std::lock_guard<std::mutex> lk(running_mu_);
    running_.push_back(trial.id());
  }
  TrialState state = TrialState::Fail;
  std::vector<double> values;
  try {
    ThreadCountScope scope(threads);
    values = objective(trial);
    state = TrialState::Complete;
    if (values.size() != directions_.size()) {
      trial.set_user_attr("fail_reason", fmt::format("the objective returned {} values for {} objectives", values.size(),
                                                     directions_.size()));
      state = TrialState::Fail;
    }
    for (double v : values)
      if (std::isnan(v)) {
        trial.set_user_attr("fail_reason", "the objective returned NaN");
        state = TrialState::Fail;
      }
  } catch (const TrialPruned&) {
    state = TrialState::Pruned;
    values.clear();
  } catch (const std::exception& e) {
    state = TrialState::Fail;
    values.clear();
    try {
      trial.set_user_attr("fail_reason", e.what());
    } catch (const std::exception&) {
    }
  }
  if (state == TrialState::Fail) values.clear();
  tell(trial, state, values);
  std::lock_guard<std::mutex> lk(running_mu_);
  std::erase(running_, trial.id());
  return trial.rec_;
}

void Study::optimize(const std::function<double(Trial&)>& objective, const OptimizeOptions& options) {
  optimize(Objective([&](Trial& t) { return std::vector<double>{objective(t)}; }), options);
}

void Study::optimize(const Objective& objective, const OptimizeOptions& o) {
  DEFT_CHECK(o.workers >= 1, "optimize: workers must be >= 1, got {}", o.workers);
  stop_.store(false);
  deadline_ = o.timeout_s > 0 ? unix_now() + o.timeout_s : 0;
  fail_stale_trials(o.stale_after_s, o.max_retries);

  // Heartbeats for this process's running trials, and the check for other processes' dead ones.
  std::mutex hb_mu;
  std::condition_variable hb_cv;
  bool hb_done = false;
  std::thread heartbeat([&] {
    double last_stale_check = unix_now();
    std::unique_lock<std::mutex> lk(hb_mu);
    while (!hb_cv.wait_for(lk, std::chrono::duration<double>(o.heartbeat_interval_s), [&] { return hb_done; })) {
      std::vector<int64_t> ids;
      {
        std::lock_guard<std::mutex> rl(running_mu_);
        ids = running_;
      }
      try {
        for (int64_t id : ids) {
          std::lock_guard<std::mutex> sl(store_mu_);
          store_->heartbeat(id);
        }
        if (unix_now() - last_stale_check > o.stale_after_s / 2) {
          fail_stale_trials(o.stale_after_s, o.max_retries);
          last_stale_check = unix_now();
        }
      } catch (const std::exception&) {
        // a transient storage error: the next beat tries again
      }
    }
  });

  const int total_threads = o.threads > 0 ? o.threads : num_threads();
  const int per_worker = std::max(1, total_threads / o.workers);
  std::atomic<int64_t> started{0};
  std::mutex end_mu;
  std::vector<double> best_history;  // best value after each finished trial (single objective)
  std::exception_ptr error;
  auto worker = [&] {
    while (!stopping()) {
      if (o.n_trials > 0 && started.fetch_add(1) >= o.n_trials) break;
      if (o.n_trials_total > 0) {
        int64_t done = 0;
        for (const auto& t : trials())
          if (t.state != TrialState::Fail && t.state != TrialState::Waiting) ++done;
        if (done >= o.n_trials_total) break;
      }
      TrialRecord ended;
      try {
        ended = run_one(objective, per_worker);
      } catch (const std::exception&) {
        // the store failed under this worker: stop the study rather than spin
        std::lock_guard<std::mutex> lk(end_mu);
        if (!error) error = std::current_exception();
        stop_.store(true);
        break;
      }
      if (o.on_trial_end || o.converge_patience > 0) {
        std::lock_guard<std::mutex> lk(end_mu);
        const std::vector<TrialRecord> all = trials();
        if (o.converge_patience > 0 && directions_.size() == 1) {
          // finished trials in end order: best-so-far curve; no relative gain in `patience` trials -> converged
          std::vector<const TrialRecord*> fin;
          for (const auto& t : all)
            if (t.state == TrialState::Complete && !t.values.empty()) fin.push_back(&t);
          std::sort(fin.begin(), fin.end(), [](auto* a, auto* b) { return a->end_time < b->end_time; });
          if (static_cast<int64_t>(fin.size()) > o.converge_patience) {
            double best_before = fin[0]->values[0];
            const size_t cut = fin.size() - static_cast<size_t>(o.converge_patience);
            for (size_t i = 1; i < cut; ++i)
              if (better(fin[i]->values[0], best_before, directions_[0])) best_before = fin[i]->values[0];
            double best_after = best_before;
            for (size_t i = cut; i < fin.size(); ++i)
              if (better(fin[i]->values[0], best_after, directions_[0])) best_after = fin[i]->values[0];
            if (std::abs(best_after - best_before) <= o.converge_min_delta * std::max(1.0, std::abs(best_before)))
              stop_.store(true);
          }
        }
        if (o.on_trial_end) o.on_trial_end(*this, ended);
      }
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < o.workers; ++w) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  {
    std::lock_guard<std::mutex> lk(hb_mu);
    hb_done = true;
  }
  hb_cv.notify_all();
  heartbeat.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace deft::tune
