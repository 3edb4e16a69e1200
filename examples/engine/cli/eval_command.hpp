// `skipllm eval`: quality of a skip policy on the dev set (docs/eval.md). Parses the options,
// loads the model and the data, runs a task of eval_tasks.hpp and prints its report (and a
// JSON summary with --json).
#pragma once

#include <cstddef>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cli/options.hpp"

namespace skipllm::cli {

enum class EvalTask { factoid, perplexity, agreement, collapse, chat, summarize, profile };

//! "factoid", "perplexity", ...
std::string_view eval_task_name(EvalTask task);

struct EvalOptions : PolicyOptions {
  std::optional<EvalTask> task;       //!< --task (required)
  std::optional<std::string> data;    //!< --data FILE (default: the dev set's report split, when known)
  std::optional<std::string> config;  //!< --config FILE: a policy config (policy_config.hpp)
  bool paper = false;                 //!< --paper: the paper's rule (eval's default anyway)
  std::optional<std::string> model;   //!< -m
  std::optional<int> max_tokens;      //!< -n; default per task (factoid 32, agreement 64, others 128)
  std::size_t limit = 0;              //!< --limit N: the first N items (0: all)
  int window = 512;                   //!< --window (perplexity, profile)
  std::optional<int> stride;          //!< --stride (default window / 2)
  std::optional<std::string> system;  //!< --system: system message (factoid)
  std::optional<std::string> plot;    //!< --plot FILE.svg (profile)
  std::optional<std::string> json;    //!< --json [FILE]; "-" = stdout
  std::string device = "cpu";         //!< --device: cpu or cuda
  int threads = 0;
  int ctx = 2048;
  bool progress = false;              //!< --progress: the progress bar even when stderr is no TTY
  bool quiet = false;                 //!< -q: no progress, no report on stderr
  std::set<std::string> given;        //!< long names of the options that appeared
  std::vector<std::string> warnings;  //!< options without effect (printed by run_eval)
};

//! Default -n of a task (its row in the task table of eval_task_table.cpp).
int default_max_tokens(EvalTask task);

//! Parses args[first..] (after "eval"); false when --help was seen. Throws UsageError.
bool parse_eval_options(std::vector<std::string> const& args, std::size_t first, EvalOptions& options,
                        std::vector<std::string>& warnings);

std::string eval_help_text();

//! Runs the evaluation; returns the exit status (commands.hpp). Problems are thrown as Failure
//! (support.hpp), which run() reports.
int run_eval(EvalOptions const& options, std::ostream& out, std::ostream& err);

}  // namespace skipllm::cli
