// Reads a JSON configuration (an optimizer's, a schedule's, a layer's, a loss's)
// with errors that name the owner, the field and the bad value, and rejects keys
// nobody asked for: a typo such as "learnng_rate" or "unit" must not silently
// train with the default.
//
//   ConfigReader r("adam", json);
//   opts.lr = r.number("lr", opts.lr);          // absent: keeps the default
//   const int64_t units = r.integer("units");   // required
//   r.finish();                                 // InputError on any key not read
//
// Read every field, then call finish() before using the values: a missing
// required field is reported there (after any unknown key, which is usually the
// typo that caused it), and until then reads as 0. It lives in the tensor layer,
// the lowest, so that nn (layers, losses) and optim share one reader.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace deft {

class ConfigReader {
 public:
  // Reject: a null value is a wrong type. Default: null means "not given" (YAML's
  // `~`, Keras's None), so the fallback is kept.
  enum class Nulls { Reject, Default };

  // `owner` prefixes every message ("adam", "schedule one_cycle", "layer Dense").
  // `config` must be a JSON object or null (no keys) and must outlive the reader.
  ConfigReader(std::string owner, const nlohmann::json& config, Nulls nulls = Nulls::Reject);

  bool has(const std::string& key) const;
  // The value as given, or nullptr when absent: for values the typed readers do not cover.
  const nlohmann::json* raw(const std::string& key);

  double number(const std::string& key, double fallback);
  double number(const std::string& key);  // required
  int64_t integer(const std::string& key, int64_t fallback);
  int64_t integer(const std::string& key);  // required
  bool boolean(const std::string& key, bool fallback);
  std::string string(const std::string& key, const std::string& fallback);
  // A JSON array of exactly `n` numbers.
  std::vector<double> numbers(const std::string& key, const std::vector<double>& fallback, size_t n);
  // A JSON array of numbers, any length.
  std::vector<double> numbers(const std::string& key, const std::vector<double>& fallback);
  // A JSON array of integers, any length; required.
  std::vector<int64_t> integers(const std::string& key);

  // Throws InputError naming a key that was present but never read, with the valid
  // keys; then one naming a required field that was absent.
  void finish() const;

 private:
  const nlohmann::json* find(const std::string& key);
  const nlohmann::json* require(const std::string& key);
  std::string owner_;
  const nlohmann::json& config_;
  Nulls nulls_;
  std::set<std::string> known_;
  std::vector<std::string> missing_;
};

}  // namespace deft
