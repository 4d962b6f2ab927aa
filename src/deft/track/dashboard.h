// `deft dashboard`: a read-only web view of a study/run store, like optuna-dashboard
// and MLflow's UI, served by deft itself (cpp-httplib; HTML, CSS and a small script
// embedded in the binary; nothing fetched from the network).
//
//   Dashboard d({.storage = "sqlite:///deft.db", .port = 0});  // 0: any free port
//   d.start();                        // serves on a background thread
//   std::cout << d.url() << "\n";     // http://127.0.0.1:41234/
//   d.stop();
//
// Pages: / (studies and recent runs), /study/NAME (summary, trial table, charts; live),
// /run/NAME (params, summary, learning curves). JSON API under /api (see dashboard.cpp).
// Only GET is served: nothing the dashboard does writes to the store.
//
// Fast with many trials: each study's trials are held in memory and the trial table is
// filtered, sorted and paginated there; a background thread re-reads only what changed
// (new trials and the running/waiting ones) every refresh_s, and plots are cached
// until their study changes.
#pragma once
#include <memory>
#include <string>

namespace deft::track {

struct DashboardOptions {
  std::string storage = "sqlite:///deft.db";
  std::string host = "127.0.0.1";  // loopback only unless asked
  int port = 8080;                 // 0: pick a free port (port() tells which)
  double refresh_s = 2;            // how often the store is polled for changes
};

class Dashboard {
 public:
  // Opens the store (InputError for a bad URL); serves nothing until start().
  explicit Dashboard(DashboardOptions o);
  ~Dashboard();  // stops
  Dashboard(const Dashboard&) = delete;
  Dashboard& operator=(const Dashboard&) = delete;

  // Binds the port (InputError naming it when it is taken) and serves on background
  // threads until stop(); returns once requests are being answered.
  void start();
  void stop();  // idempotent; from any thread but a request handler's

  int port() const;         // the bound port once started
  std::string url() const;  // "http://HOST:PORT/"

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace deft::track
