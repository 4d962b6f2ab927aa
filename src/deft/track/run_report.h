// What `deft runs` prints: the list of runs, one run in full, several side by side;
// as text tables or as JSON.
//
//   auto runs = track::open_run_store("sqlite:///deft.db");
//   std::cout << format_run_list(*runs, {.study = "fmnist", .limit = 20}, "table");
//   std::cout << format_run(*runs, "run-3", "table");          // a name or an id
//   std::cout << format_run_comparison(*runs, {"run-3", "run-4"}, "table");
//
// A run that does not exist is an InputError naming it and the store. In tables, a
// finished run whose summary says pruned (a pruned trial) shows as "pruned".
#pragma once
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include "deft/track/run_store.h"

namespace deft::track {

// Every field of a run (not its metrics) as JSON.
nlohmann::json run_json(const RunRecord& r);
// The run of that name, or of that id; InputError when there is none.
RunRecord resolve_run(RunStore& store, const std::string& name_or_id);

// format: "table" or "json".
std::string format_run_list(RunStore& store, const RunFilter& filter, const std::string& format);
std::string format_run(RunStore& store, const std::string& name_or_id, const std::string& format);
// Parameters that differ, final metrics, and per-epoch validation metrics, run by run.
std::string format_run_comparison(RunStore& store, const std::vector<std::string>& names_or_ids,
                                  const std::string& format);

}  // namespace deft::track
