#include "cli/eval_command.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <span>
#include <sstream>
#include <variant>

#include <skipllm/config.hpp>
#include <skipllm/json.hpp>
#include <skipllm/policy/describe.hpp>

#include "cli/commands.hpp"
#include "cli/summary_json.hpp"
#include "cli/support.hpp"
#include "eval/eval_tasks.hpp"
#include "eval/profile_svg.hpp"
#include "eval/timing.hpp"
#include "format/gguf.hpp"
#include "model/llama_model.hpp"
#include "format/model_cache.hpp"
#include "format/policy_config.hpp"
#include "model/thread_pool.hpp"
#include "format/tokenizer.hpp"

namespace skipllm::cli {

namespace fs = std::filesystem;
namespace eng = skipllm::engine;
namespace ev = skipllm::engine::eval;

namespace {

using ev::Clock;
using ev::seconds_since;

struct TaskRow;

// $SKIPLLM_DATA, else the source tree's examples/engine/data when the build knows it.
std::optional<fs::path> data_dir() {
  if (char const* env = std::getenv("SKIPLLM_DATA"); env != nullptr && *env) return fs::path(env);
#ifdef SKIPLLM_ENGINE_DATA_DIR
  return fs::path(SKIPLLM_ENGINE_DATA_DIR);
#else
  return std::nullopt;
#endif
}

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "n/a";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string percent(double v, int digits = 1) { return std::isfinite(v) ? fixed(100 * v, digits) + "%" : "n/a"; }

// ---- Outputs ------------------------------------------------------------------------------------

// Progress on stderr: a one-line bar with an ETA when stderr is a terminal (or --progress),
// otherwise a line at every further 10%.
class ProgressReporter {
 public:
  ProgressReporter(std::ostream& err, std::string label, std::string unit, bool bar, bool enabled)
      : err_(err), label_(std::move(label)), unit_(std::move(unit)), bar_(bar), enabled_(enabled), start_(Clock::now()) {}

  void operator()(std::size_t done, std::size_t total) {
    if (!enabled_ || total == 0) return;
    double const elapsed = seconds_since(start_);
    double const frac = static_cast<double>(done) / static_cast<double>(total);
    std::string const eta = done > 0 && done < total ? ", ETA " + duration(elapsed / frac - elapsed) : "";
    if (bar_) {
      if (done < total && elapsed - last_draw_ < 0.1 && done != 0) return;
      last_draw_ = elapsed;
      int constexpr kWidth = 28;
      int const filled = static_cast<int>(frac * kWidth);
      std::string line = "\r" + label_ + " [" + std::string(static_cast<std::size_t>(filled), '#') +
                         std::string(static_cast<std::size_t>(kWidth - filled), '.') + "] " + std::to_string(done) +
                         "/" + std::to_string(total) + " " + unit_ + ", " + duration(elapsed) + eta;
      if (line.size() < last_width_) line += std::string(last_width_ - line.size(), ' ');
      last_width_ = line.size();
      err_ << line << std::flush;
      drawn_ = true;
      if (done == total) finish();
    } else {
      int const tenth = static_cast<int>(frac * 10 + 1e-9);
      if (tenth <= last_tenth_ || (done < total && elapsed < 1.0)) return;
      last_tenth_ = tenth;
      err_ << "skipllm: " << label_ << ": " << done << "/" << total << " " << unit_ << " (" << fixed(100 * frac, 0)
           << "%), " << duration(elapsed) << eta << "\n"
           << std::flush;
    }
  }

  void finish() {
    if (drawn_) err_ << "\n" << std::flush;
    drawn_ = false;
  }

 private:
  static std::string duration(double s) {
    if (s < 60) return fixed(s, 1) + " s";
    int const total = static_cast<int>(s + 0.5);
    return std::to_string(total / 60) + " min " + std::to_string(total % 60) + " s";
  }

  std::ostream& err_;
  std::string label_, unit_;
  bool bar_, enabled_;
  Clock::time_point start_;
  double last_draw_ = -1;
  std::size_t last_width_ = 0;
  int last_tenth_ = 0;
  bool drawn_ = false;
};

// ---- Policy -------------------------------------------------------------------------------------

struct ResolvedPolicy {
  eng::PolicyConfig settings;  //!< the policy as resolved: the file with the options' overrides, or the options
  skipllm::policy::ConfigurablePolicies policies;  //!< what runs (eng::make_policies(settings))
  std::string description;
  bool dense = false;
  std::optional<std::string> config;
};

ResolvedPolicy resolve_policy(EvalOptions const& o, int num_layers) {
  ResolvedPolicy r;
  if (o.config) {
    r.config = *o.config;
    try {
      r.settings = eng::load_policy_config(*o.config);
    } catch (std::exception const& e) {
      throw Failure{kExitUsage, "--config " + *o.config + ": " + e.what()};
    }
    override_policy_config(r.settings, o, o.given);
    try {
      r.policies = eng::make_policies(r.settings, num_layers);
    } catch (std::exception const& e) {
      throw Failure{kExitUsage, "--config " + *o.config + ": " + e.what()};
    }
  } else {
    try {
      r.settings = policy_config(o, num_layers, Command::eval);
    } catch (UsageError const& e) {
      throw Failure{kExitUsage, e.what()};
    }
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

char const* skip_kind_name(skipllm::policy::AnySkip::Kind k) {
  using Kind = skipllm::policy::AnySkip::Kind;
  switch (k) {
    case Kind::greedy: return "greedy";
    case Kind::layer_thresholds: return "layer_greedy";
    case Kind::random_window: return "random_window";
    case Kind::static_mask: return "static";
    case Kind::dense: return "dense";
  }
  return "?";
}

// ---- JSON ---------------------------------------------------------------------------------------

using skipllm::write_json_string;

void jnum(std::ostream& os, double v) { skipllm::write_json_number(os, v); }
void jstr(std::ostream& os, std::string_view s) { write_json_string(os, s); }

void write_policy_json(std::ostream& os, ResolvedPolicy const& p, int num_layers) {
  eng::PolicyConfig const& c = p.settings;
  skipllm::policy::ConfigurablePolicies const& e = p.policies;
  os << "{\"description\": ";
  jstr(os, p.description);
  os << ", \"dense\": " << (p.dense ? "true" : "false") << ", \"config\": ";
  if (p.config) jstr(os, *p.config); else os << "null";
  os << ", \"kind\": \"" << skip_kind_name(e.skip.kind()) << "\", \"threshold\": ";
  write_json_float(os, c.threshold);
  os << ", \"span\": ";
  if (c.span >= skipllm::policy::kToColdRegion) os << "\"all\""; else os << c.span;
  os << ", \"spans_per_token\": " << c.spans_per_token << ", \"skip_attention\": "
     << (c.skip_attention ? "true" : "false") << ", \"warmup_tokens\": " << e.warmup.tokens
     << ", \"refresh_every\": " << e.warmup.every << ", \"cold_first\": " << e.cold.first
     << ", \"cold_last\": " << e.cold.last << ", \"cold_layers\": [";
  char const* sep = "";
  for (int l = 0; l < num_layers; ++l) {
    if (e.cold.is_cold(l, num_layers)) os << sep << l, sep = ", ";
  }
  os << "]";
  if (auto const* t = e.skip.layer_thresholds()) {
    os << ", \"layer_thresholds\": [";
    for (int l = 0; l < num_layers && l < skipllm::LayerMask::kMaxLayers; ++l) {
      os << (l ? ", " : "");
      write_json_float(os, t->tau[l]);
    }
    os << "]";
  }
  os << ", \"metric\": \"Cosine\"}";
}

void write_rouge(std::ostream& os, ev::RougeL const& r) {
  os << "{\"f1\": ";
  jnum(os, r.f1);
  os << ", \"precision\": ";
  jnum(os, r.precision);
  os << ", \"recall\": ";
  jnum(os, r.recall);
  os << "}";
}

void write_collapse(std::ostream& os, ev::CollapseMetrics const& c) {
  os << "{\"tokens\": " << c.tokens << ", \"distinct_1\": ";
  jnum(os, c.distinct_1);
  os << ", \"distinct_2\": ";
  jnum(os, c.distinct_2);
  os << ", \"distinct_3\": ";
  jnum(os, c.distinct_3);
  os << ", \"longest_repeat\": " << c.longest_repeat << ", \"collapsed\": " << (c.collapsed ? "true" : "false") << "}";
}

void write_compare_summary(std::ostream& os, ev::CompareSummary const& s) {
  os << "{";
  if (!s.bucket.empty()) {
    os << "\"bucket\": ";
    jstr(os, s.bucket);
    os << ", ";
  }
  os << "\"n\": " << s.n << ", \"identical\": " << s.identical << ", \"token_agreement_prefix\": ";
  jnum(os, s.prefix_rate);
  os << ", \"token_agreement\": ";
  jnum(os, s.overall_rate);
  os << ", \"first_divergence\": ";
  jnum(os, s.first_divergence);
  os << ", \"rouge_l_vs_dense\": ";
  jnum(os, s.rouge_vs_dense);
  os << ", \"with_reference\": " << s.with_reference << ", \"rouge_l_vs_reference\": ";
  jnum(os, s.rouge_vs_reference);
  os << ", \"dense_rouge_l_vs_reference\": ";
  jnum(os, s.dense_rouge_vs_reference);
  os << ", \"distinct_1\": ";
  jnum(os, s.distinct_1);
  os << ", \"distinct_2\": ";
  jnum(os, s.distinct_2);
  os << ", \"distinct_3\": ";
  jnum(os, s.distinct_3);
  os << ", \"longest_repeat\": ";
  jnum(os, s.longest_repeat);
  os << ", \"collapsed\": " << s.collapsed << ", \"dense_distinct_2\": ";
  jnum(os, s.dense_distinct_2);
  os << ", \"dense_longest_repeat\": ";
  jnum(os, s.dense_longest_repeat);
  os << ", \"dense_collapsed\": " << s.dense_collapsed << ", \"tokens\": ";
  jnum(os, s.skip_tokens);
  os << ", \"dense_tokens\": ";
  jnum(os, s.dense_tokens);
  os << "}";
}

// ---- What a task is -------------------------------------------------------------------------------
// Every task is one row of kTaskTable (below): its name, its defaults, what its input is, how its
// data is read and how it runs. run_eval does the rest the same way for all of them.

struct RunInfo;

// A task's data file: plain text (perplexity, profile) or JSONL items.
struct TextData {
  ev::DataFile file;
  std::string text;
};
using TaskData = std::variant<TextData, ev::Dataset<ev::FactoidItem>, ev::Dataset<ev::PromptItem>,
                              ev::Dataset<ev::SummarizeItem>>;

std::size_t data_lines(TaskData const& data) {
  return std::visit([](auto const& d) { return d.file.lines; }, data);
}

// JSONL items; 0 for text, which is counted in tokens once the tokenizer is loaded.
std::size_t data_items(TaskData const& data) {
  return std::visit(
      [](auto const& d) -> std::size_t {
        if constexpr (std::is_same_v<std::decay_t<decltype(d)>, TextData>) return 0;
        else return d.items.size();
      },
      data);
}

// What a task's run adds to the parts every report has (header, skip ratio, footer).
struct TaskReport {
  double seconds = 0;                 // wall time of the run
  std::optional<ev::RunStats> stats;  // the policy run's skip statistics; none for a dense-only task
  std::ostringstream text;            // the task's lines of the text report
  std::ostringstream json_fields;     // its JSON fields, between the header and the skip statistics
  std::ostringstream json_items;      // after the footer: `,\n  "items": [...]`, or nothing
};

// Everything a task's runner gets.
struct TaskRun {
  EvalOptions const& options;
  RunInfo const& info;
  ev::EvalModel const& model;
  TaskData const& data;
  ev::ProgressFn const& progress;
  OutputFile& plot;  // --plot (profile)
};

struct TaskRow {
  EvalTask task;
  std::string_view name;          // --task NAME
  char const* data_file;          // the dev set's report file of the task, under <data>/report
  int max_tokens = 128;           // default -n
  bool text_input = false;        // plain text, measured in tokens: -n, --limit do not apply; --window does
  bool takes_system = false;      // --system applies
  bool measures_dense = false;    // runs the dense model only: the policy options do not apply
  bool plots = false;             // --plot applies
  TaskData (*read)(fs::path const&);
  TaskReport (*run)(TaskRun const&);
};

// Everything a report needs besides the task's own result.
struct RunInfo {
  TaskRow const* task = nullptr;
  std::string data_path;
  std::size_t data_lines = 0, data_items = 0, used_items = 0;  // text tasks: items = text tokens
  std::string model_path, model_name;
  int layers = 0;
  ResolvedPolicy policy;
  double load_s = 0;
  int threads = 0, ctx = 0, max_tokens = 0;
};

void write_header_json(std::ostream& os, RunInfo const& info) {
  os << "{\n  \"schema\": \"skipllm.eval/1\",\n  \"skipllm_version\": ";
  jstr(os, version_string());
  os << ",\n  \"task\": ";
  jstr(os, info.task->name);
  os << ",\n  \"model\": {\"path\": ";
  jstr(os, info.model_path);
  os << ", \"name\": ";
  jstr(os, info.model_name);
  os << ", \"layers\": " << info.layers << "},\n  \"data\": {\"path\": ";
  jstr(os, info.data_path);
  os << ", \"lines\": " << info.data_lines << ", \"" << (info.task->text_input ? "tokens" : "items")
     << "\": " << info.data_items << ", \"used\": " << info.used_items << "},\n  \"policy\": ";
  write_policy_json(os, info.policy, info.layers);
  os << ",\n";
}

void write_stats_fields_json(std::ostream& os, ev::RunStats const& r) {
  os << "  \"skip_ratio\": ";
  jnum(os, r.skip_ratio);
  os << ",\n  \"skip_ratio_eligible\": ";
  jnum(os, r.skip_ratio_eligible);
  os << ",\n  \"skip_ratio_after_warmup\": ";
  jnum(os, r.skip_ratio_after_warmup);
  os << ",\n  \"decode_steps\": " << r.statistics.tokens() << ",\n";
}

void write_footer_json(std::ostream& os, RunInfo const& info, double run_s, skipllm::SkipStatistics const* stats) {
  os << "  \"timings_s\": {\"load\": ";
  jnum(os, info.load_s);
  os << ", \"run\": ";
  jnum(os, run_s);
  os << "},\n  \"runtime\": {\"threads\": " << info.threads << ", \"ctx\": " << info.ctx;
  if (!info.task->text_input) os << ", \"max_tokens\": " << info.max_tokens;
  os << "}";
  if (stats) {
    os << ",\n  \"statistics\": ";
    write_nested_statistics_json(os, *stats, info.policy.description);
  }
}

// The JSON summary (schema skipllm.eval/1): the common header, the task's fields, its skip
// statistics, the common footer, its items.
void write_eval_json(std::ostream& os, RunInfo const& info, TaskReport const& task) {
  write_header_json(os, info);
  os << task.json_fields.str();
  if (task.stats) write_stats_fields_json(os, *task.stats);
  write_footer_json(os, info, task.seconds, task.stats ? &task.stats->statistics : nullptr);
  os << task.json_items.str() << "\n}\n";
}

// ---- Text reports -------------------------------------------------------------------------------

void report_header(std::ostream& os, RunInfo const& info) {
  bool const text = info.task->text_input;
  os << "task:        " << info.task->name << "\n"
     << "data:        " << info.data_path << " (" << info.data_lines << " lines, " << info.data_items
     << (text ? " tokens" : " items");
  if (!text && info.used_items != info.data_items) os << ", first " << info.used_items << " used";
  os << ")\n"
     << "model:       " << info.model_path << " (" << info.layers << " layers)\n"
     << "policy:      " << info.policy.description << (info.policy.config ? " (from " + *info.policy.config + ")" : "")
     << "\n";
}

void report_skip(std::ostream& os, ev::RunStats const& r) {
  skipllm::SkipStatistics const& s = r.statistics;
  os << "skip ratio:  " << percent(r.skip_ratio) << " of all FFN blocks, " << percent(r.skip_ratio_eligible)
     << " of eligible, " << percent(r.skip_ratio_after_warmup) << " after warm-up (" << s.skipped_blocks() << " of "
     << s.ffn_blocks() << " blocks, " << s.tokens() << " decode steps, " << s.dense_tokens() << " dense)\n";
}

void report_footer(std::ostream& os, RunInfo const& info, double run_s) {
  os << "time:        " << fixed(run_s, 1) << " s (model load " << fixed(info.load_s, 2) << " s), threads " << info.threads
     << "\n";
}

// The text report: the common header, the task's lines, its skip statistics, the common footer.
std::string text_report(RunInfo const& info, TaskReport const& task) {
  std::ostringstream os;
  report_header(os, info);
  os << task.text.str();
  if (task.stats) report_skip(os, *task.stats);
  report_footer(os, info, task.seconds);
  return os.str();
}

void report_compare(std::ostream& os, EvalTask task, ev::CompareSummary const& s, bool dense_run) {
  if (task != EvalTask::collapse || dense_run) {
    os << "agreement:   tokens " << percent(s.overall_rate) << " position-wise, " << percent(s.prefix_rate)
       << " up to the first divergence (mean first divergence at token " << fixed(s.first_divergence, 1) << "), "
       << s.identical << " of " << s.n << " identical\n"
       << "ROUGE-L:     " << fixed(s.rouge_vs_dense, 3) << " vs dense";
    if (s.with_reference) {
      os << "; vs reference " << fixed(s.rouge_vs_reference, 3) << " (dense " << fixed(s.dense_rouge_vs_reference, 3)
         << ", " << s.with_reference << " references)";
    }
    os << "\n";
  }
  os << "collapse:    " << s.collapsed << " of " << s.n << " collapsed (dense " << s.dense_collapsed
     << "); distinct-1/2/3 " << fixed(s.distinct_1, 3) << " / " << fixed(s.distinct_2, 3) << " / "
     << fixed(s.distinct_3, 3) << " (dense distinct-2 " << fixed(s.dense_distinct_2, 3)
     << "); longest repeat " << fixed(s.longest_repeat, 1) << " tokens (dense " << fixed(s.dense_longest_repeat, 1)
     << ")\n"
     << "generated:   " << fixed(s.skip_tokens, 1) << " tokens per item (dense " << fixed(s.dense_tokens, 1) << ")\n";
}

// The length buckets of summarize: ROUGE-L and agreement per prompt length.
void report_buckets(std::ostream& os, ev::CompareResult const& r) {
  char const* const format = "%-9s %3s  %-13s  %16s  %12s  %18s  %9s\n";
  char line[200];
  std::snprintf(line, sizeof line, format, "by length", "n", "prompt tokens", "ROUGE-L vs dense", "vs reference",
                "dense vs reference", "agreement");
  os << line;
  for (ev::CompareSummary const& b : r.buckets) {
    std::size_t lo = SIZE_MAX, hi = 0;
    for (ev::CompareItemResult const& x : r.items) {
      if (x.bucket == b.bucket) lo = std::min(lo, x.prompt_tokens), hi = std::max(hi, x.prompt_tokens);
    }
    std::snprintf(line, sizeof line, format, b.bucket.c_str(), std::to_string(b.n).c_str(),
                  (std::to_string(lo) + "-" + std::to_string(hi)).c_str(), fixed(b.rouge_vs_dense, 3).c_str(),
                  fixed(b.rouge_vs_reference, 3).c_str(), fixed(b.dense_rouge_vs_reference, 3).c_str(),
                  percent(b.overall_rate).c_str());
    os << line;
  }
}

// ---- The tasks ------------------------------------------------------------------------------------

// The items a run uses: the first --limit of the data's.
template <class Item>
std::span<Item const> used_items(TaskRun const& t) {
  auto const& items = std::get<ev::Dataset<Item>>(t.data).items;
  return {items.data(), t.info.used_items};
}

TaskReport run_factoid_task(TaskRun const& t) {
  ev::FactoidOptions fo;
  fo.max_tokens = t.info.max_tokens;
  fo.system = t.options.system;
  ev::FactoidResult const r =
      ev::run_factoid(t.model, t.info.policy.policies, used_items<ev::FactoidItem>(t), fo, t.progress);
  TaskReport out;
  out.seconds = r.seconds;
  out.stats = r;
  out.text << "accuracy:    " << percent(r.accuracy) << " (" << r.correct << " of " << r.n << " correct, -n "
           << t.info.max_tokens << ")\n";

  std::ostream& j = out.json_fields;
  j << "  \"accuracy\": ";
  jnum(j, r.accuracy);
  j << ",\n  \"n\": " << r.n << ",\n  \"correct\": " << r.correct << ",\n";

  std::ostream& items = out.json_items;
  items << ",\n  \"items\": [";
  for (std::size_t i = 0; i < r.items.size(); ++i) {
    ev::FactoidItemResult const& x = r.items[i];
    items << (i ? ",\n" : "\n") << "    {\"id\": ";
    jstr(items, x.id);
    items << ", \"line\": " << x.line << ", \"question\": ";
    jstr(items, x.question);
    items << ", \"answers\": [";
    for (std::size_t a = 0; a < x.answers.size(); ++a) {
      items << (a ? ", " : "");
      jstr(items, x.answers[a]);
    }
    items << "], \"output\": ";
    jstr(items, x.output);
    items << ", \"correct\": " << (x.correct ? "true" : "false") << ", \"matched\": ";
    if (x.matched_answer >= 0) jstr(items, x.answers[static_cast<std::size_t>(x.matched_answer)]); else items << "null";
    items << ", \"prompt_tokens\": " << x.prompt_tokens << ", \"generated_tokens\": " << x.generated_tokens
          << ", \"stop_reason\": ";
    jstr(items, x.stop_reason);
    items << ", \"skipped_blocks\": " << x.skipped_blocks << ", \"ffn_blocks\": " << x.ffn_blocks << "}";
  }
  items << "\n  ]";
  return out;
}

TaskReport run_perplexity_task(TaskRun const& t) {
  ev::PerplexityOptions po;
  po.window = t.options.window;
  po.stride = t.options.stride.value_or(0);
  ev::PerplexityResult const r =
      ev::run_perplexity(t.model, t.info.policy.policies, std::get<TextData>(t.data).text, po, t.progress);
  TaskReport out;
  out.seconds = r.seconds;
  out.stats = r;
  out.text << "perplexity:  " << fixed(r.perplexity, 3) << " (" << r.tokens << " tokens scored, mean NLL "
           << fixed(-r.sum_log_prob / static_cast<double>(std::max<std::int64_t>(r.tokens, 1)), 4) << " nats; "
           << r.windows << " windows of " << r.window << ", stride " << r.stride << ")\n";

  std::ostream& j = out.json_fields;
  j << "  \"perplexity\": ";
  jnum(j, r.perplexity);
  j << ",\n  \"tokens\": " << r.tokens << ",\n  \"nll\": ";
  jnum(j, r.tokens ? -r.sum_log_prob / static_cast<double>(r.tokens) : std::nan(""));
  j << ",\n  \"text_tokens\": " << r.text_tokens << ",\n  \"windows\": " << r.windows << ",\n  \"window\": " << r.window
    << ",\n  \"stride\": " << r.stride << ",\n";
  return out;
}

TaskReport run_profile_task(TaskRun const& t) {
  ev::ProfileOptions po;
  po.window = t.options.window;
  po.stride = t.options.stride.value_or(0);
  po.threshold = t.options.threshold;
  ev::ProfileResult const r = ev::run_profile(t.model, std::get<TextData>(t.data).text, po, t.progress);
  if (t.plot) {
    ev::write_profile_svg(t.plot.stream(), r,
                          "model: " + fs::path(t.info.model_path).filename().string() + ", data: " +
                              fs::path(t.info.data_path).filename().string() + " (" + std::to_string(r.tokens) +
                              " tokens, window " + std::to_string(t.options.window) + ")");
    t.plot.finish();
  }
  TaskReport out;
  out.seconds = r.seconds;
  out.text << "profile:     " << r.tokens << " decode steps in " << r.windows << " windows (dense perplexity "
           << fixed(r.perplexity, 3) << ")\n"
           << "cosine(h, h + FFN(h)) per layer; > tau: share of tokens above --threshold " << fixed(r.threshold, 3)
           << "\n"
           << "layer    mean     std     min     p10  median     p90     max   > tau\n";
  for (ev::LayerProfile const& l : r.layers) {
    char line[160];
    std::snprintf(line, sizeof line, "%5d  %6.4f  %6.4f  %6.4f  %6.4f  %6.4f  %6.4f  %6.4f  %6s\n", l.layer,
                  l.cosine.mean, l.cosine.stddev, l.cosine.min, l.cosine.p10, l.cosine.median, l.cosine.p90,
                  l.cosine.max, percent(l.above_threshold).c_str());
    out.text << line;
  }

  // Skips nothing, by design: the skip ratios are 0 and there are no skip statistics.
  std::ostream& j = out.json_fields;
  j << "  \"tokens\": " << r.tokens << ",\n  \"windows\": " << r.windows << ",\n  \"perplexity\": ";
  jnum(j, r.perplexity);
  j << ",\n  \"threshold\": ";
  write_json_float(j, r.threshold);
  j << ",\n  \"skip_ratio\": 0,\n  \"skip_ratio_eligible\": 0,\n  \"skip_ratio_after_warmup\": 0,\n"
    << "  \"layers\": [";
  for (std::size_t i = 0; i < r.layers.size(); ++i) {
    ev::LayerProfile const& l = r.layers[i];
    j << (i ? ",\n" : "\n") << "    {\"layer\": " << l.layer << ", \"count\": " << l.cosine.count << ", \"mean\": ";
    jnum(j, l.cosine.mean);
    j << ", \"std\": ";
    jnum(j, l.cosine.stddev);
    j << ", \"min\": ";
    jnum(j, l.cosine.min);
    j << ", \"p10\": ";
    jnum(j, l.cosine.p10);
    j << ", \"median\": ";
    jnum(j, l.cosine.median);
    j << ", \"p90\": ";
    jnum(j, l.cosine.p90);
    j << ", \"max\": ";
    jnum(j, l.cosine.max);
    j << ", \"above_threshold\": ";
    jnum(j, l.above_threshold);
    j << "}";
  }
  j << "\n  ],\n";
  return out;
}

void write_compare_item_json(std::ostream& j, ev::CompareItemResult const& x) {
  j << "    {\"id\": ";
  jstr(j, x.id);
  j << ", \"line\": " << x.line << ", \"prompt_tokens\": " << x.prompt_tokens;
  if (!x.bucket.empty()) {
    j << ", \"bucket\": ";
    jstr(j, x.bucket);
  }
  j << ", \"text\": ";
  jstr(j, x.skip.text);
  j << ", \"dense_text\": ";
  jstr(j, x.dense.text);
  j << ", \"stop_reason\": ";
  jstr(j, x.skip.stop_reason);
  j << ", \"dense_stop_reason\": ";
  jstr(j, x.dense.stop_reason);
  j << ", \"tokens\": " << x.skip.tokens.size() << ", \"dense_tokens\": " << x.dense.tokens.size()
    << ", \"first_divergence\": " << x.agreement.first_divergence << ", \"token_agreement_prefix\": ";
  jnum(j, x.agreement.prefix_rate);
  j << ", \"token_agreement\": ";
  jnum(j, x.agreement.overall_rate);
  j << ", \"rouge_l_vs_dense\": ";
  write_rouge(j, x.rouge_vs_dense);
  j << ", \"rouge_l_vs_reference\": ";
  if (x.rouge_vs_reference) write_rouge(j, *x.rouge_vs_reference); else j << "null";
  j << ", \"dense_rouge_l_vs_reference\": ";
  if (x.dense_rouge_vs_reference) write_rouge(j, *x.dense_rouge_vs_reference); else j << "null";
  j << ", \"collapse\": ";
  write_collapse(j, x.collapse);
  j << ", \"dense_collapse\": ";
  write_collapse(j, x.dense_collapse);
  j << ", \"skipped_blocks\": " << x.skip.skipped_blocks << ", \"ffn_blocks\": " << x.skip.ffn_blocks << "}";
}

// The tasks that generate with the policy and densely and compare the two (agreement, collapse,
// chat, summarize); `compare` is the task's ev::run_* function.
template <class Item, class Compare>
TaskReport run_compare_task(TaskRun const& t, Compare compare) {
  ev::CompareOptions co;
  co.max_tokens = t.info.max_tokens;
  ev::CompareResult const r = compare(t.model, t.info.policy.policies, used_items<Item>(t), co, t.progress);
  TaskReport out;
  out.seconds = r.seconds;
  out.stats = r;
  report_compare(out.text, t.info.task->task, r.summary, r.dense_run);
  if (!r.buckets.empty()) report_buckets(out.text, r);

  std::ostream& j = out.json_fields;
  ev::CompareSummary const& s = r.summary;
  j << "  \"n\": " << s.n << ",\n  \"token_agreement\": ";
  jnum(j, s.overall_rate);
  j << ",\n  \"token_agreement_prefix\": ";
  jnum(j, s.prefix_rate);
  j << ",\n  \"rouge_l_vs_dense\": ";
  jnum(j, s.rouge_vs_dense);
  j << ",\n  \"rouge_l_vs_reference\": ";
  jnum(j, s.rouge_vs_reference);
  j << ",\n  \"collapsed\": " << s.collapsed << ",\n  \"dense_run\": " << (r.dense_run ? "true" : "false")
    << ",\n  \"summary\": ";
  write_compare_summary(j, s);
  j << ",\n  \"buckets\": [";
  for (std::size_t i = 0; i < r.buckets.size(); ++i) {
    j << (i ? ",\n    " : "\n    ");
    write_compare_summary(j, r.buckets[i]);
  }
  j << (r.buckets.empty() ? "],\n" : "\n  ],\n");

  std::ostream& items = out.json_items;
  items << ",\n  \"items\": [";
  for (std::size_t i = 0; i < r.items.size(); ++i) {
    items << (i ? ",\n" : "\n");
    write_compare_item_json(items, r.items[i]);
  }
  items << "\n  ]";
  return out;
}

TaskData read_text_data(fs::path const& path) {
  TextData d;
  d.text = ev::read_text(path, d.file);
  return d;
}

// The tasks, in the order of --help. A new task is one row here (and its runner above).
TaskRow const kTaskTable[] = {
    {.task = EvalTask::factoid, .name = "factoid", .data_file = "factoid.jsonl", .max_tokens = 32,
     .takes_system = true,
     .read = [](fs::path const& p) -> TaskData { return ev::read_factoid(p); },
     .run = run_factoid_task},
    {.task = EvalTask::perplexity, .name = "perplexity", .data_file = "perplexity.txt", .text_input = true,
     .read = read_text_data,
     .run = run_perplexity_task},
    {.task = EvalTask::agreement, .name = "agreement", .data_file = "agreement.jsonl", .max_tokens = 64,
     .read = [](fs::path const& p) -> TaskData { return ev::read_prompts(p); },
     .run = [](TaskRun const& t) { return run_compare_task<ev::PromptItem>(t, ev::run_agreement); }},
    {.task = EvalTask::collapse, .name = "collapse", .data_file = "agreement.jsonl",
     .read = [](fs::path const& p) -> TaskData { return ev::read_prompts(p); },
     .run = [](TaskRun const& t) { return run_compare_task<ev::PromptItem>(t, ev::run_collapse); }},
    {.task = EvalTask::chat, .name = "chat", .data_file = "chat.jsonl",
     .read = [](fs::path const& p) -> TaskData { return ev::read_prompts(p); },
     .run = [](TaskRun const& t) { return run_compare_task<ev::PromptItem>(t, ev::run_chat); }},
    {.task = EvalTask::summarize, .name = "summarize", .data_file = "summarize.jsonl",
     .read = [](fs::path const& p) -> TaskData { return ev::read_summarize(p); },
     .run = [](TaskRun const& t) { return run_compare_task<ev::SummarizeItem>(t, ev::run_summarize); }},
    {.task = EvalTask::profile, .name = "profile", .data_file = "perplexity.txt", .text_input = true,
     .measures_dense = true, .plots = true,
     .read = read_text_data,
     .run = run_profile_task},
};

TaskRow const& task_row(EvalTask task) {
  return *std::find_if(std::begin(kTaskTable), std::end(kTaskTable), [&](TaskRow const& r) { return r.task == task; });
}

// ---- Options ------------------------------------------------------------------------------------

std::optional<EvalTask> task_from_name(std::string_view name) {
  for (TaskRow const& r : kTaskTable) {
    if (r.name == name) return r.task;
  }
  return std::nullopt;
}

std::string task_list() {
  std::string s;
  for (TaskRow const& r : kTaskTable) s += (s.empty() ? "" : ", ") + std::string(r.name);
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
      {"--threads", 't', true, [&](OptionArg const& a) { o.threads = static_cast<int>(parse_int_option(a, 0, 1'024)); }},
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
  if (o.config && o.paper) throw UsageError("--config and --paper conflict (--paper selects the authors' settings)" + hint, c);
  if (o.stride && *o.stride > o.window) {
    throw UsageError("--stride " + std::to_string(*o.stride) + " is larger than --window " + std::to_string(o.window) + hint,
                     c);
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
    for (char const* name : {"--span", "--spans-per-token", "--warmup", "--refresh-every", "--cold-first", "--cold-last",
                             "--dense", "--config", "--paper"}) {
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
         "Runtime and output:\n"
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
  } catch (ev::DataError const& e) {
    throw Failure{kExitUsage, e.what()};
  }
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
    eng::ThreadPool pool(o.threads);
    info.threads = pool.size();
    ev::EvalModel const model{files.loaded->model, files.tokenizer, pool, adds_bos_token(files.loaded->file), info.ctx,
                              info.policy.settings.skip_attention};
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
  } catch (ev::DataError const& e) {
    throw Failure{kExitUsage, e.what()};
  }
}

}  // namespace skipllm::cli
