// The `skipllm` command line: subcommands, their options, validation and help texts.
//
// parse_command_line() only parses and range-checks; it touches neither files nor the model, so
// it is unit-tested directly (tests/engine/cli/test_cli.cpp). Checks that need the model (cold
// layers against the depth, the prompt against the context) happen in policy_config() and in
// the generate command. Every problem is a UsageError whose message names the option and the
// offending value; the executable prints it and exits with status 2.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "format/policy_config.hpp"
#include "model/llama_host.hpp"

namespace skipllm::cli {

enum class Command { help, version, generate, chat, info, fetch_model, eval, calibrate };

//! "generate", "chat", "info", "fetch-model", "eval"; "" for help and version.
std::string_view command_name(Command command);

//! The skip-policy options, shared by every command that decodes: generate, chat, eval. Parsed
//! by add_policy_options(); they become a policy config (policy_config()) or override one
//! (override_policy_config()), which engine::make_policies() turns into the library's policies.
struct PolicyOptions {
  float threshold = 0.95f;
  int span = 8;  //!< skipllm::policy::kToColdRegion for "--span all"
  int spans_per_token = 1;
  int warmup = 16;
  int refresh_every = 6;
  std::optional<int> cold_first;  //!< default: round(layers / 6)
  std::optional<int> cold_last;   //!< default: round(layers / 6)
  bool dense = false;             //!< spans_per_token = 0: nothing is skipped, same code path
};

struct GenerateOptions : PolicyOptions {
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

  // The skip policy: the PolicyOptions base, or a policy config file (policy options given as
  // well override its values). With neither, the default model uses its shipped calibrated
  // config (examples/engine/configs/smollm2-135m-instruct.json) and other models the paper's
  // rule; --paper forces the paper's rule.
  std::optional<std::string> config;    //!< --config FILE
  bool paper = false;                   //!< --paper
  std::set<std::string> given_options;  //!< long names of the options given (for the overrides)

  // Runtime.
  int threads = 0;  //!< 0: one per hardware thread
  int ctx = 2048;   //!< clamped to the model's context length
  engine::ActivationPrecision precision = engine::ActivationPrecision::kFloat32;  //!< --precision
  engine::KvCacheType kv_cache = engine::KvCacheType::kFloat16;                   //!< --kv-cache

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

struct EvalOptions;       // eval_command.hpp
struct CalibrateOptions;  // calibrate_command.hpp

struct CommandLine {
  Command command = Command::help;
  Command help_for = Command::help;  //!< with command == help: whose help to print
  GenerateOptions generate;          //!< generate and chat
  InfoOptions info;
  FetchModelOptions fetch_model;
  std::shared_ptr<EvalOptions> eval;            //!< eval (eval_command.hpp)
  std::shared_ptr<CalibrateOptions> calibrate;  //!< calibrate (calibrate_command.hpp)
  std::vector<std::string> warnings;            //!< options that have no effect in this combination
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

//! The policy the options describe on their own (the paper's rule; --dense: kind dense, no
//! spans), for a model with `num_layers` layers. Throws UsageError (for `command`'s help) when
//! a cold region is deeper than the model.
engine::PolicyConfig policy_config(PolicyOptions const& options, int num_layers, Command command = Command::generate);

//! `config` (a policy config file) with the policy options given on the command line
//! overriding its values; `given` holds the long names of the options given.
void override_policy_config(engine::PolicyConfig& config, PolicyOptions const& options,
                            std::set<std::string> const& given);

// ---- Building blocks of every subcommand's option parser ----------------------------------------

//! One option as given: `name` as the user spelled it ("-n/--max-tokens"), its value.
struct OptionArg {
  std::string name;
  std::string value;
  Command command;
};

//! An option of a subcommand; `apply` checks the value and stores it into the options object it
//! captures. A subcommand's parser is a list of these.
struct Option {
  std::string long_name;  //!< "--max-tokens"
  char short_name = 0;    //!< 'n', or 0
  bool takes_value = false;
  std::function<void(OptionArg const&)> apply;
};

//! Parses args[first..] against `options`: values after '=' or as the next argument (unless that
//! is one of the options), glued short values, a repeated option is an error, suggestions for
//! misspellings.
//! Returns false when -h/--help was seen. `given` collects the long names that appeared.
bool parse_option_list(std::vector<std::string> const& args, std::size_t first, Command command,
                       std::vector<Option> const& options, std::set<std::string>& given);

//! Value checks; they throw UsageError naming the option and the value.
std::int64_t parse_int_option(OptionArg const& arg, std::int64_t lo, std::int64_t hi);
float parse_float_option(OptionArg const& arg, float lo, float hi, bool open_low = false);

//! " (see 'skipllm COMMAND --help')".
std::string help_hint(Command command);

//! Appends the skip-policy options (--threshold, --span, --spans-per-token, --warmup,
//! --refresh-every, --cold-first, --cold-last, --dense) writing into `target`.
void add_policy_options(std::vector<Option>& options, PolicyOptions& target);

//! The cross-option checks of the policy options (--dense with --spans-per-token is an error;
//! --threshold/--span with --dense only earn a warning, appended to `warnings`).
void check_policy_options(PolicyOptions const& options, std::set<std::string> const& given, Command command,
                          std::vector<std::string>& warnings);

//! The "Skip policy" block of the help texts.
std::string policy_options_help();

}  // namespace skipllm::cli
