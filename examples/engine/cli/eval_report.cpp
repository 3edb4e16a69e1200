#include "cli/eval_report.hpp"

#include <skipllm/json.hpp>

#include "cli/eval_task_table.hpp"
#include "cli/summary_json.hpp"
#include "cli/support.hpp"

namespace skipllm::cli {

namespace eng = skipllm::engine;
namespace ev = skipllm::engine::eval;

namespace {

using skipllm::write_json_number;
using skipllm::write_json_string;

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

void write_policy_json(std::ostream& os, ResolvedPolicy const& p, int num_layers) {
  eng::PolicyConfig const& c = p.settings;
  skipllm::policy::ConfigurablePolicies const& e = p.policies;
  os << "{\"description\": ";
  write_json_string(os, p.description);
  os << ", \"dense\": " << (p.dense ? "true" : "false") << ", \"config\": ";
  if (p.config)
    write_json_string(os, *p.config);
  else
    os << "null";
  os << ", \"kind\": \"" << skip_kind_name(e.skip.kind()) << "\", \"threshold\": ";
  write_json_float(os, c.threshold);
  os << ", \"span\": ";
  if (c.span >= skipllm::policy::kToColdRegion)
    os << "\"all\"";
  else
    os << c.span;
  // The value that ran (a dense config runs Greedy with 0 spans), not the file's.
  int spans_per_token = c.spans_per_token;
  if (auto const* g = e.skip.greedy()) spans_per_token = g->spans_per_token;
  if (auto const* t = e.skip.layer_thresholds()) spans_per_token = t->spans_per_token;
  os << ", \"spans_per_token\": " << spans_per_token
     << ", \"skip_attention\": " << (c.skip_attention ? "true" : "false") << ", \"warmup_tokens\": " << e.warmup.tokens
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

void write_header_json(std::ostream& os, RunInfo const& info) {
  os << "{\n  \"schema\": \"skipllm.eval/1\",\n  \"skipllm_version\": ";
  write_json_string(os, version_string());
  os << ",\n  \"task\": ";
  write_json_string(os, info.task->name);
  os << ",\n  \"model\": {\"path\": ";
  write_json_string(os, info.model_path);
  os << ", \"name\": ";
  write_json_string(os, info.model_name);
  os << ", \"layers\": " << info.layers << "},\n  \"data\": {\"path\": ";
  write_json_string(os, info.data_path);
  os << ", \"lines\": " << info.data_lines << ", \"" << (info.task->text_input ? "tokens" : "items")
     << "\": " << info.data_items << ", \"used\": " << info.used_items << "},\n  \"policy\": ";
  write_policy_json(os, info.policy, info.layers);
  os << ",\n";
}

void write_stats_fields_json(std::ostream& os, ev::RunStats const& r) {
  os << "  \"skip_ratio\": ";
  write_json_number(os, r.skip_ratio);
  os << ",\n  \"skip_ratio_eligible\": ";
  write_json_number(os, r.skip_ratio_eligible);
  os << ",\n  \"skip_ratio_after_warmup\": ";
  write_json_number(os, r.skip_ratio_after_warmup);
  os << ",\n  \"decode_steps\": " << r.statistics.tokens() << ",\n";
}

void write_footer_json(std::ostream& os, RunInfo const& info, double run_s, skipllm::SkipStatistics const* stats) {
  os << "  \"timings_s\": {\"load\": ";
  write_json_number(os, info.load_s);
  os << ", \"run\": ";
  write_json_number(os, run_s);
  os << "},\n  \"runtime\": {\"threads\": " << info.threads << ", \"ctx\": " << info.ctx;
  if (!info.task->text_input) os << ", \"max_tokens\": " << info.max_tokens;
  os << "}";
  if (stats) {
    os << ",\n  \"statistics\": ";
    write_nested_statistics_json(os, *stats, info.policy.description);
  }
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
  os << "time:        " << fixed(run_s, 1) << " s (model load " << fixed(info.load_s, 2) << " s), threads "
     << info.threads << "\n";
}

}  // namespace

void write_eval_json(std::ostream& os, RunInfo const& info, TaskReport const& task) {
  write_header_json(os, info);
  os << task.json_fields.str();
  if (task.stats) write_stats_fields_json(os, *task.stats);
  write_footer_json(os, info, task.seconds, task.stats ? &task.stats->statistics : nullptr);
  os << task.json_items.str() << "\n}\n";
}

std::string text_report(RunInfo const& info, TaskReport const& task) {
  std::ostringstream os;
  report_header(os, info);
  os << task.text.str();
  if (task.stats) report_skip(os, *task.stats);
  report_footer(os, info, task.seconds);
  return os.str();
}

}  // namespace skipllm::cli
