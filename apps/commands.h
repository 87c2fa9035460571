// The subcommands of the `sdlora` binary. Each lives in its own cmd_<name>.cpp: add_<name>_command
// registers the subcommand and its options on the root app and returns the function main runs
// when that subcommand was chosen. Commands throw on error; main prints the message and exits.
#pragma once

#include <functional>
#include <string>

namespace CLI {
class App;
}

namespace sdlora::apps {

struct Command {
  CLI::App* app = nullptr;
  std::function<void()> run;
};

Command add_forward_command(CLI::App& root);
Command add_bench_command(CLI::App& root);
Command add_pretrain_command(CLI::App& root);
Command add_train_command(CLI::App& root);
Command add_eval_command(CLI::App& root);
Command add_export_command(CLI::App& root);
Command add_demo_command(CLI::App& root);
Command add_report_command(CLI::App& root);
Command add_analyze_command(CLI::App& root);

// Throws "<flag>: cannot read '<path>' (...)" unless path names a readable regular file.
void require_input_file(const std::string& flag, const std::string& path);

}  // namespace sdlora::apps
