// The `skipllm` command-line tool: generate text with FFN skipping on a LLaMA-family GGUF model,
// inspect a model, fetch the default one. Usage: docs/cli.md, or `skipllm --help`.
#include <iostream>

#include "cli/commands.hpp"
#include "cli/options.hpp"

int main(int argc, char** argv) {
  namespace cli = skipllm::cli;
  if (argc < 2) {
    std::cerr << cli::help_text(cli::Command::help);
    return cli::kExitUsage;
  }
  cli::CommandLine command_line;
  try {
    command_line = cli::parse_command_line(argc, argv);
  } catch (cli::UsageError const& e) {
    std::cerr << "skipllm: error: " << e.what() << "\n";
    return cli::kExitUsage;
  }
  return cli::run(command_line, std::cout, std::cerr);
}
