// The `deft` command: parses flags and calls the library; no logic of its own.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "deft/tensor/error.h"
#include "deft/tensor/parallel.h"
#include "deft/version.h"

int main(int argc, char** argv) {
  CLI::App app{"deft: automated model training, from data to a deployable model"};
  app.set_version_flag("--version", std::string("deft ") + DEFT_VERSION);
  int threads = 0;
  app.add_option("--threads", threads, "Threads for one run (default: DEFT_NUM_THREADS or all cores)")
      ->check(CLI::NonNegativeNumber);
  app.require_subcommand(0, 1);
  app.footer(
      "Commands arrive with later layers: train, auto, eval, predict, export, serve, report.\n"
      "Run 'deft COMMAND --help' for the flags of a command.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "deft: error: %s\n", e.what());
    return 2;
  }
  try {
    if (threads > 0) deft::set_num_threads(threads);
    if (argc == 1) std::printf("%s", app.help().c_str());
    return 0;
  } catch (const deft::InputError& e) {
    std::fprintf(stderr, "deft: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deft: internal error: %s\n", e.what());
    return 1;
  }
}
