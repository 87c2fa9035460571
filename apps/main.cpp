// sdlora: the project's command-line tool. One subcommand per job (train, eval, export, demo,
// forward, pretrain, bench, report, analyze); each is defined in apps/cmd_<name>.cpp. Only this
// file exits: commands throw, and the message is printed here with a non-zero exit status.
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>
#include <vector>

#include "apps/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"sdlora: SD-LoRA continual learning on a from-scratch CUDA/C++ framework"};
  app.name("sdlora");
  app.require_subcommand(1);
  const std::vector<sdlora::apps::Command> commands = {
      sdlora::apps::add_train_command(app),   sdlora::apps::add_eval_command(app),
      sdlora::apps::add_export_command(app),  sdlora::apps::add_demo_command(app),
      sdlora::apps::add_forward_command(app), sdlora::apps::add_pretrain_command(app),
      sdlora::apps::add_bench_command(app),   sdlora::apps::add_report_command(app),
      sdlora::apps::add_analyze_command(app),
  };
  // CLI11 would only say that a subcommand is required; name the word it did not know.
  const auto known = [&](const char* word) {
    for (const auto& command : commands)
      if (command.app->check_name(word)) return true;
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !known(argv[1])) {
    std::cerr << "sdlora: unknown subcommand '" << argv[1] << "' (known:";
    for (const auto& command : commands) std::cerr << " " << command.app->get_name();
    std::cerr << ")\nRun with --help for more information.\n";
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (const auto& command : commands) {
    if (!command.app->parsed()) continue;
    try {
      command.run();
    } catch (const std::exception& e) {
      std::cerr << "sdlora " << command.app->get_name() << ": error: " << e.what() << "\n";
      return 1;
    }
    return 0;
  }
  return 1;  // require_subcommand(1) makes this unreachable
}
