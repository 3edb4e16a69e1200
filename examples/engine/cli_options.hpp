// The `skipllm` command line: subcommands, their options, validation and help texts.
//
// parse_command_line() only parses and range-checks; it touches neither files nor the model, so
// it is unit-tested directly (tests/engine/test_cli.cpp). Checks that need the model (cold
// layers against the depth, the prompt against the context) happen in make_policies() and in
// the generate command. Every problem is a UsageError whose message names the option and the
// offending value; the executable prints it and exits with status 2.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <skipllm/policy/bundle.hpp>

namespace skipllm::cli {

enum class Command { help, version, generate, chat, info, fetch_model };

//! "generate", "chat", "info", "fetch-model"; "" for help and version.
std::string_view command_name(Command command);

struct GenerateOptions {
  // Model and prompt.
  std::optional<std::string> model;        //!< -m; default: $SKIPLLM_MODEL, then the cached SmolLM2
  std::optional<std::string> prompt;       //!< -p
  std::optional<std::string> prompt_file;  //!< --prompt-file ("-" = stdin)
  bool raw = false;                        //!< no chat template
  std::optional<std::string> system;       //!< system message for the chat template
  int max_tokens = 128;

  // Sampling: greedy unless temperature > 0.
  float temperature = 0.0f;
  float top_p = 1.0f;
  std::optional<std::uint64_t> seed;  //!< default: random (reported in the summary)

  // The skip policy (skipllm::policy::RuntimePolicies).
  float threshold = 0.95f;
  int span = 8;  //!< skipllm::policy::kToColdRegion for "--span all"
  int spans_per_token = 1;
  int warmup = 16;
  int refresh_every = 6;
  std::optional<int> cold_first;  //!< default: round(layers / 6)
  std::optional<int> cold_last;   //!< default: round(layers / 6)
  bool dense = false;             //!< spans_per_token = 0: nothing is skipped, same code path

  // Runtime.
  int threads = 0;  //!< 0: one per hardware thread
  int ctx = 2048;   //!< clamped to the model's context length

  // Outputs ("-" = stdout, which then carries no streamed text).
  std::optional<std::string> json;
  std::optional<std::string> trace;
  std::optional<std::string> heatmap;
  bool quiet = false;  //!< no summary on stderr

  bool writes_stdout() const { return json == "-" || trace == "-" || heatmap == "-"; }
};

struct InfoOptions {
  std::optional<std::string> model;
  bool tensors = false;  //!< list every tensor
};

struct FetchModelOptions {
  std::optional<std::string> output;  //!< default: the cache path
  bool force = false;                 //!< download even when the file exists
};

struct CommandLine {
  Command command = Command::help;
  Command help_for = Command::help;  //!< with command == help: whose help to print
  GenerateOptions generate;          //!< generate and chat
  InfoOptions info;
  FetchModelOptions fetch_model;
  std::vector<std::string> warnings;  //!< options that have no effect in this combination
};

//! A bad command line. what() is the complete message; command() says whose --help to point at.
class UsageError : public std::runtime_error {
 public:
  UsageError(std::string const& message, Command command) : std::runtime_error(message), command_(command) {}
  Command command() const noexcept { return command_; }

 private:
  Command command_;
};

//! Parses the arguments after the program name. Throws UsageError.
CommandLine parse_command_line(std::vector<std::string> const& args);
//! The same from main's argc/argv (argv[0], the program name, is skipped).
CommandLine parse_command_line(int argc, char const* const* argv);

//! The --help text of a subcommand (Command::help: the overview).
std::string help_text(Command command);

//! round(num_layers / 6): the cold layers at each end when --cold-first/--cold-last are not given.
int default_cold_layers(int num_layers);

//! The policies the options describe, for a model with `num_layers` layers. Throws UsageError
//! when a cold region is deeper than the model.
skipllm::policy::RuntimePolicies make_policies(GenerateOptions const& options, int num_layers);

}  // namespace skipllm::cli
