// Reading studies back from storage: what `deft study list|show|best|export` prints.
#pragma once
#include <string>
#include "deft/track/study_store.h"

namespace deft::tune {

// "90", "90s", "10m", "1h30m", "1.5h" -> seconds; InputError naming the text otherwise.
double parse_duration(const std::string& text);

std::string format_study_list(track::StudyStore& store);                        // one row per study
// format: "table" (study summary + leaderboard of every finished trial), "json", "csv"
std::string format_study(track::StudyStore& store, const std::string& study, const std::string& format);
// The best trial (single objective) or the Pareto front: "table" or "json".
std::string format_best(track::StudyStore& store, const std::string& study, const std::string& format);

}  // namespace deft::tune
