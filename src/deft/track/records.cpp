#include <chrono>
#include <cmath>

#include "deft/tensor/error.h"
#include "deft/track/study_store.h"

namespace deft::track {

using json = nlohmann::json;

std::string to_string(Direction d) { return d == Direction::Maximize ? "maximize" : "minimize"; }

Direction direction_from_string(const std::string& s) {
  if (s == "maximize" || s == "max") return Direction::Maximize;
  if (s == "minimize" || s == "min") return Direction::Minimize;
  fail("direction '{}' is neither 'minimize' nor 'maximize'", s);
}

std::string to_string(TrialState s) {
  switch (s) {
    case TrialState::Running: return "running";
    case TrialState::Complete: return "complete";
    case TrialState::Pruned: return "pruned";
    case TrialState::Fail: return "fail";
    case TrialState::Waiting: return "waiting";
  }
  return "?";
}

TrialState trial_state_from_string(const std::string& s) {
  for (TrialState t : {TrialState::Running, TrialState::Complete, TrialState::Pruned, TrialState::Fail,
                       TrialState::Waiting})
    if (to_string(t) == s) return t;
  fail("trial state '{}' is not one of running, complete, pruned, fail, waiting", s);
}

double unix_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// ---- Distribution ---------------------------------------------------------------------------

Distribution Distribution::float_range(double low, double high, bool log, double step) {
  DEFT_CHECK(std::isfinite(low) && std::isfinite(high) && low <= high,
             "float range: low {} must be <= high {} (both finite)", low, high);
  DEFT_CHECK(!log || low > 0, "float range: a log range needs low > 0, got {}", low);
  DEFT_CHECK(step >= 0 && std::isfinite(step), "float range: step must be >= 0, got {}", step);
  DEFT_CHECK(!(log && step > 0), "float range: step and log cannot be used together");
  Distribution d;
  d.kind = Kind::Float;
  d.low = low;
  d.high = high;
  d.log = log;
  d.step = step;
  if (step > 0) {  // as Optuna: high is lowered onto the grid low + k*step
    const double k = std::floor((high - low) / step + 1e-9);
    d.high = low + k * step;
  }
  return d;
}

Distribution Distribution::int_range(int64_t low, int64_t high, bool log, int64_t step) {
  DEFT_CHECK(low <= high, "int range: low {} must be <= high {}", low, high);
  DEFT_CHECK(!log || low >= 1, "int range: a log range needs low >= 1, got {}", low);
  DEFT_CHECK(step >= 1, "int range: step must be >= 1, got {}", step);
  DEFT_CHECK(!(log && step != 1), "int range: step and log cannot be used together");
  Distribution d;
  d.kind = Kind::Int;
  d.low = static_cast<double>(low);
  d.high = static_cast<double>(low + (high - low) / step * step);
  d.log = log;
  d.step = static_cast<double>(step);
  return d;
}

Distribution Distribution::categorical(std::vector<json> choices) {
  DEFT_CHECK(!choices.empty(), "categorical: needs at least one choice");
  for (size_t i = 0; i < choices.size(); ++i)
    for (size_t j = i + 1; j < choices.size(); ++j)
      DEFT_CHECK(choices[i] != choices[j], "categorical: choice {} appears twice", choices[i].dump());
  Distribution d;
  d.kind = Kind::Categorical;
  d.low = 0;
  d.high = static_cast<double>(choices.size() - 1);
  d.step = 1;
  d.choices = std::move(choices);
  return d;
}

bool Distribution::contains(double v) const {
  if (!std::isfinite(v) || v < low - 1e-12 * std::abs(low) || v > high + 1e-12 * std::abs(high)) return false;
  if (kind == Kind::Categorical || kind == Kind::Int) {
    if (v != std::round(v)) return false;
    if (kind == Kind::Int) {
      const double k = (v - low) / step;
      return std::abs(k - std::round(k)) < 1e-9;
    }
    return true;
  }
  if (step > 0) {
    const double k = (v - low) / step;
    return std::abs(k - std::round(k)) < 1e-6;
  }
  return true;
}

json Distribution::external(double v) const {
  switch (kind) {
    case Kind::Categorical: {
      const auto i = static_cast<size_t>(std::llround(v));
      DEFT_CHECK(v >= 0 && i < choices.size(), "categorical: index {} out of range (0..{})", v, choices.size() - 1);
      return choices[i];
    }
    case Kind::Int: return static_cast<int64_t>(std::llround(v));
    case Kind::Float: return v;
  }
  return v;
}

double Distribution::internal(const json& e) const {
  if (kind == Kind::Categorical) {
    for (size_t i = 0; i < choices.size(); ++i)
      if (choices[i] == e) return static_cast<double>(i);
    // 1 and 1.0 are the same choice
    if (e.is_number())
      for (size_t i = 0; i < choices.size(); ++i)
        if (choices[i].is_number() && choices[i].get<double>() == e.get<double>()) return static_cast<double>(i);
    fail("value {} is not one of the choices {}", e.dump(), json(choices).dump());
  }
  DEFT_CHECK(e.is_number(), "value {} is not a number", e.dump());
  const double v = e.get<double>();
  DEFT_CHECK(contains(v), "value {} is outside {}", v, to_json().dump());
  return v;
}

json Distribution::to_json() const {
  switch (kind) {
    case Kind::Categorical: return {{"type", "categorical"}, {"choices", choices}};
    case Kind::Int:
      return {{"type", "int"}, {"low", static_cast<int64_t>(low)}, {"high", static_cast<int64_t>(high)},
              {"log", log}, {"step", static_cast<int64_t>(step)}};
    case Kind::Float: return {{"type", "float"}, {"low", low}, {"high", high}, {"log", log}, {"step", step}};
  }
  return nullptr;
}

Distribution Distribution::from_json(const json& j) {
  DEFT_CHECK(j.is_object() && j.contains("type") && j["type"].is_string(),
             "distribution {} needs a \"type\" of float, int or categorical", j.dump());
  const std::string t = j["type"].get<std::string>();
  try {
    if (t == "categorical") return categorical(j.at("choices").get<std::vector<json>>());
    if (t == "int")
      return int_range(j.at("low").get<int64_t>(), j.at("high").get<int64_t>(), j.value("log", false),
                       j.value("step", int64_t{1}));
    if (t == "float")
      return float_range(j.at("low").get<double>(), j.at("high").get<double>(), j.value("log", false),
                         j.value("step", 0.0));
  } catch (const json::exception& e) {
    fail("distribution {}: {}", j.dump(), e.what());
  }
  fail("distribution {}: type '{}' is not float, int or categorical", j.dump(), t);
}

bool Distribution::operator==(const Distribution& o) const {
  return kind == o.kind && low == o.low && high == o.high && log == o.log && step == o.step && choices == o.choices;
}

bool Distribution::single() const {
  if (kind == Kind::Categorical) return choices.size() == 1;
  return low == high;
}

// ---- TrialRecord ----------------------------------------------------------------------------

json TrialRecord::param_json() const {
  json out = json::object();
  for (const auto& [name, v] : params) {
    auto it = distributions.find(name);
    out[name] = it == distributions.end() ? json(v) : it->second.external(v);
  }
  return out;
}

std::optional<int64_t> TrialRecord::last_step() const {
  if (intermediate.empty()) return std::nullopt;
  return intermediate.rbegin()->first;
}

}  // namespace deft::track
