// Reads an optimizer's or schedule's JSON configuration with errors that name the
// owner, the key and the bad value, and rejects keys nobody asked for (a typo such
// as "learnng_rate" must not silently train with the default).
//
//   ConfigReader r("adam", json);
//   opts.lr = r.number("lr", opts.lr);          // absent: keeps the default
//   opts.amsgrad = r.boolean("amsgrad", opts.amsgrad);
//   r.finish();                                 // InputError on any key not read
//
// Internal to the optim layer: make_optimizer() and make_schedule() use it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace deft::optim::detail {

class ConfigReader {
 public:
  // `owner` prefixes every message ("adam", "schedule one_cycle").
  ConfigReader(std::string owner, const nlohmann::json& config);

  bool has(const std::string& key) const;
  double number(const std::string& key, double fallback);
  int64_t integer(const std::string& key, int64_t fallback);
  bool boolean(const std::string& key, bool fallback);
  std::string string(const std::string& key, const std::string& fallback);
  // A JSON array of exactly `n` numbers.
  std::vector<double> numbers(const std::string& key, const std::vector<double>& fallback, size_t n);
  // Throws InputError naming every key that was present but never read, and the valid keys.
  void finish() const;

 private:
  const nlohmann::json* find(const std::string& key);
  std::string owner_;
  const nlohmann::json& config_;
  std::set<std::string> known_;
};

// Checks shared by the options of every optimizer and schedule; messages name owner and field.
void check_finite(const std::string& owner, const char* field, double v);
void check_non_negative(const std::string& owner, const char* field, double v);
void check_positive(const std::string& owner, const char* field, double v);
void check_unit_interval(const std::string& owner, const char* field, double v);  // [0, 1)

}  // namespace deft::optim::detail
