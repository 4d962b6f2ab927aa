// The `deft` subcommands that live in their own files (cli/<name>_cmd.cpp): each adds
// its flags to the app and returns what runs it when it was the command parsed.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace deft::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;  // returns the exit code; InputError escapes to main (exit 2)
};

Command add_export_command(CLI::App& app);  // cli/export_cmd.cpp: deft export (ONNX, int8)
Command add_serve_command(CLI::App& app);   // cli/serve_cmd.cpp: deft serve (HTTP)

}  // namespace deft::cli
