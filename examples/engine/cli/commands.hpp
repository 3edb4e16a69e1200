// The `skipllm` subcommands (generate/chat, info, fetch-model) and the JSON run summary.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <skipllm/policy/bundle.hpp>
#include <skipllm/statistics.hpp>

#include "cli/options.hpp"

namespace skipllm::cli {

//! Exit statuses of the executable.
enum ExitStatus : int {
  kExitOk = 0,
  kExitRuntime = 1,  //!< generation failed, an output could not be written
  kExitUsage = 2,    //!< bad command line, unreadable model or prompt file
  kExitFetch = 3,    //!< the default model could not be downloaded
};

//! Runs a parsed command line. `out` is stdout (the generated text, --json -, paths); `err` is
//! stderr (progress, statistics, warnings, errors). Returns the exit status.
int run(CommandLine const& command_line, std::ostream& out, std::ostream& err);

//! Everything a generate run reports besides the statistics (schema skipllm.cli/1, docs/cli.md).
struct RunSummary {
  std::string command = "generate";
  std::string model_path;
  std::string architecture;
  std::string model_name;
  int layers = 0;
  int model_context = 0;

  std::string prompt;
  bool chat_template = true;
  std::optional<std::string> system;

  std::string text;
  std::string stop_reason;           //!< "eos", "max_tokens", "context_full" or "non_finite"
  std::optional<std::string> error;  //!< why generation failed ("non_finite": NaN/Inf met)
  std::int64_t prompt_tokens = 0;
  std::int64_t generated_tokens = 0;
  std::int64_t decode_steps = 0;
  std::vector<std::int32_t> prompt_ids;     //!< the prompt's token ids (after templating)
  std::vector<std::int32_t> generated_ids;  //!< the generated tokens' ids, end-of-generation excluded
  double load_s = 0, prefill_s = 0, decode_s = 0;

  GenerateOptions options;            //!< sampling, max tokens, the policy options as given
  std::optional<std::uint64_t> seed;  //!< the seed used when sampling
  int threads = 0;
  int ctx = 0;                               //!< effective context limit
  std::string int8_isa;                      //!< the integer kernels' instruction set (--precision int8)
  std::size_t kv_cache_bytes = 0;            //!< the KV cache allocated for this run
  std::string policy_description;            //!< the policies that ran (engine::describe_policies)
  std::optional<std::string> policy_config;  //!< where they came from, when from a config file
};

//! Writes `{"schema": "skipllm.cli/1", ..., "statistics": {skipllm.stats/2}}`.
void write_summary_json(std::ostream& os, RunSummary const& summary, engine::PolicyConfig const& policy,
                        skipllm::SkipStatistics const& statistics);

}  // namespace skipllm::cli
