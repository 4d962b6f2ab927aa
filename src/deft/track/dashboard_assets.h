// The dashboard's pages, style sheet and script, embedded in the binary (no CDN, no
// network), and the escaping every page relies on. Pages are rendered with what the
// server knows now, every data text through html_escape; the script (served at
// /static/dashboard.js) keeps them live from the JSON API and writes data into the page
// only as text (textContent, never innerHTML).
#pragma once
#include <string>
#include <string_view>
#include <nlohmann/json.hpp>

namespace deft::track::dash {

std::string html_escape(std::string_view text);  // svg::escape: & < > " ' as entities, bad UTF-8 and controls replaced
std::string url_encode(std::string_view text);   // one path segment or query value
std::string percent_decode(std::string_view text);  // %XX sequences; a malformed one is kept as is

extern const std::string_view kDashboardCss;
extern const std::string_view kDashboardJs;

// studies: /api/studies's "studies"; runs: /api/runs's "runs" (null: no run store).
std::string index_page(const nlohmann::json& studies, const nlohmann::json& runs, int refresh_ms);
std::string study_page(const nlohmann::json& summary, int refresh_ms);  // summary: /api/studies/{name}/summary
std::string run_page(const std::string& run_name, int refresh_ms);
std::string not_found_page(const std::string& what);  // "study '<name>'"

}  // namespace deft::track::dash
