#include "cli/eval_command.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>

#include <skipllm/policy/describe.hpp>

#include "cli/commands.hpp"
#include "cli/cuda_task_generator.hpp"
#include "cli/eval_report.hpp"
#include "cli/eval_task_table.hpp"
#include "cli/progress_reporter.hpp"
#include "cli/support.hpp"
#include "eval/eval_tasks.hpp"
#include "eval/timing.hpp"
#include "format/policy_config.hpp"
#include "model/thread_pool.hpp"

namespace skipllm::cli {

namespace fs = std::filesystem;
namespace eng = skipllm::engine;
namespace ev = skipllm::engine::eval;

namespace {

using ev::Clock;
using ev::seconds_since;

// $SKIPLLM_DATA, else the source tree's examples/engine/data when the build knows it.
std::optional<fs::path> data_dir() {
  if (char const* env = std::getenv("SKIPLLM_DATA"); env != nullptr && *env) return fs::path(env);
#ifdef SKIPLLM_ENGINE_DATA_DIR
  return fs::path(SKIPLLM_ENGINE_DATA_DIR);
#else
  return std::nullopt;
#endif
}

// ---- Policy -------------------------------------------------------------------------------------

ResolvedPolicy resolve_policy(EvalOptions const& o, int num_layers) {
  ResolvedPolicy r;
  if (o.config) {
    r.config = *o.config;
    try {
      r.settings = eng::load_policy_config(*o.config);
    } catch (std::exception const& e) { throw Failure{kExitUsage, "--config " + *o.config + ": " + e.what()}; }
    override_policy_config(r.settings, o, o.given);
    try {
      r.policies = eng::make_policies(r.settings, num_layers);
    } catch (std::exception const& e) { throw Failure{kExitUsage, "--config " + *o.config + ": " + e.what()}; }
  } else {
    try {
      r.settings = policy_config(o, num_layers, Command::eval);
    } catch (UsageError const& e) { throw Failure{kExitUsage, e.what()}; }
    r.policies = eng::make_policies(r.settings, num_layers);
  }
  r.dense = !ev::can_skip(r.policies);
  r.description = eng::describe_policies(r.policies, r.settings.skip_attention);
  return r;
}

// The policy of a task that measures the dense model: nothing skipped; --threshold only sets
// the share of tokens it reports above the threshold.
ResolvedPolicy dense_profile_policy(float threshold) {
  ResolvedPolicy r;
  r.policies = ev::profile_policies(threshold);
  // The same values, for the report's policy fields.
  r.settings.kind = eng::PolicyConfig::Kind::dense;
  r.settings.threshold = threshold;
  r.settings.span = 1;
  r.settings.spans_per_token = 0;
  r.settings.warmup_tokens = r.settings.warmup_every = 0;
  r.settings.cold_first = r.settings.cold_last = 0;
  r.description = skipllm::describe(r.policies);
  r.dense = true;
  return r;
}

// ---- Options ------------------------------------------------------------------------------------

std::optional<EvalTask> task_from_name(std::string_view name) {
  for (TaskRow const& r : task_table()) {
    if (r.name == name) return r.task;
  }
  return std::nullopt;
}

std::string task_list() {
  std::string s;
  for (TaskRow const& r : task_table()) s += (s.empty() ? "" : ", ") + std::string(r.name);
  return s;
}

}  // namespace

std::string_view eval_task_name(EvalTask task) { return task_row(task).name; }

int default_max_tokens(EvalTask task) { return task_row(task).max_tokens; }

bool parse_eval_options(std::vector<std::string> const& raw_args, std::size_t first, EvalOptions& o,
                        std::vector<std::string>& warnings) {
  Command const c = Command::eval;
  // --json takes an optional value: alone, or before another option, it means stdout.
  std::vector<std::string> args(raw_args.begin(), raw_args.end());
  for (std::size_t i = first; i < args.size(); ++i) {
    if (args[i] == "--json" &&
        (i + 1 == args.size() || (args[i + 1].size() > 1 && args[i + 1][0] == '-' && args[i + 1] != "-"))) {
      args.insert(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, "-");
    }
  }
  auto const file_value = [](OptionArg const& a) {
    if (a.value.empty()) throw UsageError(a.name + " needs a file name" + help_hint(a.command), a.command);
    return a.value;
  };
  std::vector<Option> options = {
      {"--task", 0, true,
       [&](OptionArg const& a) {
         o.task = task_from_name(a.value);
         if (!o.task) {
           throw UsageError("unknown task '" + a.value + "' for --task; tasks: " + task_list() + help_hint(c), c);
         }
       }},
      {"--data", 0, true, [&](OptionArg const& a) { o.data = file_value(a); }},
      {"--config", 0, true, [&](OptionArg const& a) { o.config = file_value(a); }},
      {"--paper", 0, false, [&](OptionArg const&) { o.paper = true; }},
      {"--model", 'm', true, [&](OptionArg const& a) { o.model = a.value; }},
      {"--max-tokens", 'n', true,
       [&](OptionArg const& a) { o.max_tokens = static_cast<int>(parse_int_option(a, 1, 100'000)); }},
      {"--limit", 0, true,
       [&](OptionArg const& a) { o.limit = static_cast<std::size_t>(parse_int_option(a, 1, 100'000'000)); }},
      {"--window", 0, true, [&](OptionArg const& a) { o.window = static_cast<int>(parse_int_option(a, 2, 1 << 20)); }},
      {"--stride", 0, true, [&](OptionArg const& a) { o.stride = static_cast<int>(parse_int_option(a, 1, 1 << 20)); }},
      {"--system", 0, true, [&](OptionArg const& a) { o.system = a.value; }},
      {"--plot", 0, true, [&](OptionArg const& a) { o.plot = file_value(a); }},
      {"--json", 0, true, [&](OptionArg const& a) { o.json = file_value(a); }},
      {"--device", 0, true, [&](OptionArg const& a) { o.device = parse_device_option(a); }},
      {"--threads", 't', true,
       [&](OptionArg const& a) { o.threads = static_cast<int>(parse_int_option(a, 0, 1'024)); }},
      {"--ctx", 0, true, [&](OptionArg const& a) { o.ctx = static_cast<int>(parse_int_option(a, 2, 1 << 20)); }},
      {"--progress", 0, false, [&](OptionArg const&) { o.progress = true; }},
      {"--quiet", 'q', false, [&](OptionArg const&) { o.quiet = true; }},
  };
  add_policy_options(options, o);
  if (!parse_option_list(args, first, c, options, o.given)) return false;

  std::string const hint = help_hint(c);
  if (!o.task) throw UsageError("no task: pass --task TASK (" + task_list() + ")" + hint, c);
  TaskRow const& task = task_row(*o.task);
  check_policy_options(o, o.given, c, warnings);
  if (o.config && o.paper)
    throw UsageError("--config and --paper conflict (--paper selects the authors' settings)" + hint, c);
  if (o.stride && *o.stride > o.window) {
    throw UsageError(
        "--stride " + std::to_string(*o.stride) + " is larger than --window " + std::to_string(o.window) + hint, c);
  }
  if (o.plot && !task.plots) throw UsageError("--plot is only for --task profile" + hint, c);
  auto const no_effect = [&](char const* name, std::string const& why) {
    if (o.given.count(name)) warnings.push_back(std::string(name) + " has no effect " + why);
  };

  std::string const for_task = "with --task " + std::string(task.name);
  if (task.text_input) {
    no_effect("--max-tokens", for_task);
    no_effect("--limit", for_task);
    no_effect("--system", for_task);
  } else {
    no_effect("--window", for_task);
    no_effect("--stride", for_task);
  }
  if (!task.takes_system) no_effect("--system", for_task + " (the data carries the conversations)");
  if (task.measures_dense) {
    for (char const* name : {"--span", "--spans-per-token", "--warmup", "--refresh-every", "--cold-first",
                             "--cold-last", "--dense", "--config", "--paper"}) {
      no_effect(name, for_task + ", which always runs dense (--threshold sets the reported share)");
    }
  }
  o.warnings = warnings;  // run_eval prints them
  return true;
}

std::string eval_help_text() {
  return "usage: skipllm eval --task TASK [--data FILE] [policy options | --dense | --config FILE] [options]\n\n"
         "Measures what a skip policy costs in quality, on the dev set (examples/engine/data) or your\n"
         "own data, and reports the skip ratio it achieved. Details: docs/eval.md.\n\n"
         "Tasks:\n"
         "  factoid     JSONL {\"question\", \"answers\": [...]}: accuracy (an answer appears in the reply)\n"
         "  perplexity  plain text: sliding-window perplexity, every position a decode step\n"
         "  agreement   JSONL prompts: greedy token agreement and ROUGE-L of the policy vs dense\n"
         "  collapse    JSONL prompts: distinct-1/2/3, longest repeated n-gram, collapse flag\n"
         "  chat        JSONL {\"messages\": [...]}: the last assistant turn vs dense (and a reference)\n"
         "  summarize   JSONL {\"document\", \"reference\"?}: ROUGE-L vs dense and reference, by length\n"
         "  profile     plain text: dense per-layer FFN cosine profile (table; --plot for an SVG)\n"
         "\n"
         "Data and model:\n"
         "      --task TASK         one of the tasks above (required)\n"
         "      --data FILE         the data (default: the dev set's report split, from $SKIPLLM_DATA\n"
         "                          or the source tree)\n"
         "  -m, --model PATH        GGUF model (default: $SKIPLLM_MODEL, else the cached SmolLM2)\n"
         "      --limit N           only the first N items\n"
         "  -n, --max-tokens N      tokens to generate per item (default: factoid 32, agreement 64,\n"
         "                          collapse/chat/summarize 128)\n"
         "      --system TEXT       system message for factoid (default: the model's)\n"
         "      --window W          perplexity/profile window in tokens (default 512)\n"
         "      --stride S          window stride (default W/2)\n"
         "\n" +
         policy_options_help() +
         "      --config FILE       a policy config file (skipllm calibrate); policy options given\n"
         "                          as well override its values\n"
         "      --paper             the paper's rule with the options above: eval's default (unlike\n"
         "                          generate, eval never picks a shipped config by itself)\n"
         "\n"
         "Runtime and output:\n" +
         device_option_help() +
         "  -t, --threads N         worker threads, 0 = one per hardware thread (default 0)\n"
         "      --ctx N             context limit in tokens (default 2048)\n"
         "      --json [FILE]       JSON summary (schema skipllm.eval/1); no FILE or - = stdout, the\n"
         "                          report then goes to stderr\n"
         "      --plot FILE         profile: SVG plot of the per-layer mean and std\n"
         "      --progress          progress bar on stderr even when it is not a terminal\n"
         "  -q, --quiet             no progress and no report on stderr\n"
         "  -h, --help              this help\n"
         "\n"
         "Examples:\n"
         "  skipllm eval --task factoid --data examples/engine/data/report/factoid.jsonl --dense\n"
         "  skipllm eval --task perplexity --data examples/engine/data/report/perplexity.txt --threshold 0.99\n"
         "  skipllm eval --task profile --data examples/engine/data/report/perplexity.txt --plot profile.svg\n";
}

namespace {

// --data, else the dev set's report file of the task.
fs::path data_path(EvalOptions const& o, TaskRow const& task) {
  if (o.data) return *o.data;
  if (auto const dir = data_dir()) return *dir / "report" / task.data_file;
  throw Failure{kExitUsage, "no data: pass --data FILE"};
}

// Reads the task's data (before the model loads: a bad file fails fast).
TaskData read_data(TaskRow const& task, fs::path const& path, std::size_t limit, RunInfo& info) {
  info.data_path = path.string();
  TaskData data;
  try {
    data = task.read(path);
  } catch (ev::DataError const& e) { throw Failure{kExitUsage, e.what()}; }
  info.data_lines = data_lines(data);
  info.data_items = data_items(data);
  if (!task.text_input && info.data_items == 0) throw Failure{kExitUsage, path.string() + ": no items"};
  info.used_items = limit > 0 ? std::min(limit, info.data_items) : info.data_items;
  return data;
}

// A model with its tokenizer, loaded (timed) for the run.
struct EvalModelFiles {
  std::unique_ptr<LoadedModel> loaded;
  eng::Tokenizer tokenizer;
};

EvalModelFiles load_eval_model(EvalOptions const& o, std::ostream& err, RunInfo& info) {
  fs::path const model_path = find_model(o.model, err);
  Clock::time_point const start = Clock::now();
  std::unique_ptr<LoadedModel> loaded = load_model(model_path);
  eng::Tokenizer tokenizer = load_tokenizer(*loaded);
  info.load_s = seconds_since(start);
  info.model_path = model_path.string();
  info.model_name = model_name(loaded->file);
  info.layers = loaded->model.config().n_layers;
  return {std::move(loaded), std::move(tokenizer)};
}

// The policy, context and token limit of the run, checked against the model.
void plan_run(EvalOptions const& o, TaskRow const& task, eng::LlamaConfig const& config, RunInfo& info) {
  info.policy = task.measures_dense ? dense_profile_policy(o.threshold) : resolve_policy(o, config.n_layers);
  info.ctx = std::min(o.ctx, config.context_length);
  info.max_tokens = o.max_tokens.value_or(task.max_tokens);
  if (task.text_input && o.window + 1 > config.context_length) {
    throw Failure{kExitUsage, "--window " + std::to_string(o.window) + " exceeds the model's context of " +
                                  std::to_string(config.context_length) + " tokens"};
  }
}

}  // namespace

int run_eval(EvalOptions const& o, std::ostream& out, std::ostream& err) {
  try {
    require_device(o.device);
    TaskRow const& task = task_row(*o.task);
    for (auto const& w : o.warnings) err << "skipllm: warning: " << w << "\n";
    fs::path const data_file = data_path(o, task);

    // Outputs first, so that a bad path fails before the run.
    OutputFile json(o.json, "--json", out);
    OutputFile plot(o.plot, "--plot", out);
    std::ostream& report = o.json == "-" || o.plot == "-" ? err : out;
    bool const show_report = !(o.quiet && &report == &err);

    RunInfo info;
    info.task = &task;
    TaskData const data = read_data(task, data_file, o.limit, info);
    EvalModelFiles const files = load_eval_model(o, err, info);
    plan_run(o, task, files.loaded->model.config(), info);
    if (!task.measures_dense) {
      attach_standins(info.policy.settings, o.config, files.loaded->model, info.policy.policies);
      info.policy.description = eng::describe_policies(info.policy.policies, info.policy.settings.skip_attention);
    }
    bool const cuda = o.device == "cuda";
    if (cuda && info.policy.settings.skip_attention) {
      throw Failure{kExitUsage, "--device cuda does not run the layer-skip baseline (skip_attention) yet"};
    }
    eng::ThreadPool pool(cuda ? 1 : o.threads);  // the device computes; one host thread drives it
    info.threads = pool.size();
    // The same tasks on either engine: --device cuda only changes where they decode.
    ev::EvalModel const model{files.loaded->model,
                              files.tokenizer,
                              pool,
                              adds_bos_token(files.loaded->file),
                              info.ctx,
                              info.policy.settings.skip_attention,
                              cuda ? cuda_task_generators(files.loaded->model) : ev::GeneratorFactory{}};
    if (task.text_input) {
      info.data_items = info.used_items = files.tokenizer.encode(std::get<TextData>(data).text, false).size();
    }

    bool const tty = &err == &std::cerr && ::isatty(STDERR_FILENO) == 1;
    ProgressReporter progress(err, std::string(task.name), task.text_input ? "tokens" : "items", tty || o.progress,
                              !o.quiet);
    ev::ProgressFn const on_progress = [&](std::size_t done, std::size_t total) { progress(done, total); };
    TaskReport const result = task.run({o, info, model, data, on_progress, plot});
    progress.finish();

    if (show_report) report << text_report(info, result) << std::flush;
    if (json) {
      write_eval_json(json.stream(), info, result);
      json.finish();
    }
    return kExitOk;
  } catch (ev::DataError const& e) { throw Failure{kExitUsage, e.what()}; }
}

}  // namespace skipllm::cli
