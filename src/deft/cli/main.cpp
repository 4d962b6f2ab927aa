// The `deft` command: parses flags and calls the library; no logic of its own.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <iostream>

#include "deft/data/inspect.h"
#include "deft/tensor/error.h"
#include "deft/tensor/parallel.h"
#include "deft/version.h"

namespace {

struct DataInspectArgs {
  std::string path;
  std::string target;
  std::string resize;
  bool json = false;
};

int run_data_inspect(const DataInspectArgs& a) {
  const nlohmann::json r = deft::data::inspect_data(a.path, {.target = a.target, .resize = a.resize});
  if (a.json) std::cout << r.dump(2) << "\n";
  else std::cout << deft::data::format_inspection(r);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"deft: automated model training, from data to a deployable model"};
  app.set_version_flag("--version", std::string("deft ") + DEFT_VERSION);
  int threads = 0;
  app.add_option("--threads", threads, "Threads for one run (default: DEFT_NUM_THREADS or all cores)")
      ->check(CLI::NonNegativeNumber);
  app.require_subcommand(0, 1);
  app.footer("Run 'deft COMMAND --help' for the flags of a command.");

  CLI::App* data = app.add_subcommand("data", "Look at data: deft data inspect PATH");
  data->require_subcommand(1);
  DataInspectArgs inspect;
  CLI::App* inspect_cmd = data->add_subcommand(
      "inspect", "Report rows, columns, types, missing values and class balance of a dataset");
  inspect_cmd->add_option("path", inspect.path, "A registered name (fashion-mnist, mnist) or a file/folder")
      ->required();
  inspect_cmd->add_option("--target", inspect.target, "CSV: the label column");
  inspect_cmd->add_option("--resize", inspect.resize, "Image folders: resize every image to HxW");
  inspect_cmd->add_flag("--json", inspect.json, "Print the report as JSON");

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
    if (inspect_cmd->parsed()) return run_data_inspect(inspect);
    std::printf("%s", app.help().c_str());
    return 0;
  } catch (const deft::InputError& e) {
    std::fprintf(stderr, "deft: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deft: internal error: %s\n", e.what());
    return 1;
  }
}
