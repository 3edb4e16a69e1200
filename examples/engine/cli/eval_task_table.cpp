#include "cli/eval_task_table.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <type_traits>

#include <skipllm/json.hpp>

#include "cli/summary_json.hpp"
#include "eval/profile_svg.hpp"

namespace skipllm::cli {

namespace fs = std::filesystem;
namespace ev = skipllm::engine::eval;

namespace {

using skipllm::write_json_number;
using skipllm::write_json_string;

// ---- Pieces of the compare tasks' reports -----------------------------------------------------------

void write_rouge(std::ostream& os, ev::RougeL const& r) {
  os << "{\"f1\": ";
  write_json_number(os, r.f1);
  os << ", \"precision\": ";
  write_json_number(os, r.precision);
  os << ", \"recall\": ";
  write_json_number(os, r.recall);
  os << "}";
}

void write_collapse(std::ostream& os, ev::CollapseMetrics const& c) {
  os << "{\"tokens\": " << c.tokens << ", \"distinct_1\": ";
  write_json_number(os, c.distinct_1);
  os << ", \"distinct_2\": ";
  write_json_number(os, c.distinct_2);
  os << ", \"distinct_3\": ";
  write_json_number(os, c.distinct_3);
  os << ", \"longest_repeat\": " << c.longest_repeat << ", \"collapsed\": " << (c.collapsed ? "true" : "false") << "}";
}

void write_compare_summary(std::ostream& os, ev::CompareSummary const& s) {
  os << "{";
  if (!s.bucket.empty()) {
    os << "\"bucket\": ";
    write_json_string(os, s.bucket);
    os << ", ";
  }
  os << "\"n\": " << s.n << ", \"identical\": " << s.identical << ", \"token_agreement_prefix\": ";
  write_json_number(os, s.prefix_rate);
  os << ", \"token_agreement\": ";
  write_json_number(os, s.overall_rate);
  os << ", \"first_divergence\": ";
  write_json_number(os, s.first_divergence);
  os << ", \"rouge_l_vs_dense\": ";
  write_json_number(os, s.rouge_vs_dense);
  os << ", \"with_reference\": " << s.with_reference << ", \"rouge_l_vs_reference\": ";
  write_json_number(os, s.rouge_vs_reference);
  os << ", \"dense_rouge_l_vs_reference\": ";
  write_json_number(os, s.dense_rouge_vs_reference);
  os << ", \"distinct_1\": ";
  write_json_number(os, s.distinct_1);
  os << ", \"distinct_2\": ";
  write_json_number(os, s.distinct_2);
  os << ", \"distinct_3\": ";
  write_json_number(os, s.distinct_3);
  os << ", \"longest_repeat\": ";
  write_json_number(os, s.longest_repeat);
  os << ", \"collapsed\": " << s.collapsed << ", \"dense_distinct_2\": ";
  write_json_number(os, s.dense_distinct_2);
  os << ", \"dense_longest_repeat\": ";
  write_json_number(os, s.dense_longest_repeat);
  os << ", \"dense_collapsed\": " << s.dense_collapsed << ", \"tokens\": ";
  write_json_number(os, s.skip_tokens);
  os << ", \"dense_tokens\": ";
  write_json_number(os, s.dense_tokens);
  os << "}";
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
     << fixed(s.distinct_3, 3) << " (dense distinct-2 " << fixed(s.dense_distinct_2, 3) << "); longest repeat "
     << fixed(s.longest_repeat, 1) << " tokens (dense " << fixed(s.dense_longest_repeat, 1) << ")\n"
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

// ---- The runners ------------------------------------------------------------------------------

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
  write_json_number(j, r.accuracy);
  j << ",\n  \"n\": " << r.n << ",\n  \"correct\": " << r.correct << ",\n";

  std::ostream& items = out.json_items;
  items << ",\n  \"items\": [";
  for (std::size_t i = 0; i < r.items.size(); ++i) {
    ev::FactoidItemResult const& x = r.items[i];
    items << (i ? ",\n" : "\n") << "    {\"id\": ";
    write_json_string(items, x.id);
    items << ", \"line\": " << x.line << ", \"question\": ";
    write_json_string(items, x.question);
    items << ", \"answers\": [";
    for (std::size_t a = 0; a < x.answers.size(); ++a) {
      items << (a ? ", " : "");
      write_json_string(items, x.answers[a]);
    }
    items << "], \"output\": ";
    write_json_string(items, x.output);
    items << ", \"correct\": " << (x.correct ? "true" : "false") << ", \"matched\": ";
    if (x.matched_answer >= 0) {
      write_json_string(items, x.answers[static_cast<std::size_t>(x.matched_answer)]);
    } else {
      items << "null";
    }
    items << ", \"prompt_tokens\": " << x.prompt_tokens << ", \"generated_tokens\": " << x.generated_tokens
          << ", \"stop_reason\": ";
    write_json_string(items, x.stop_reason);
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
  write_json_number(j, r.perplexity);
  j << ",\n  \"tokens\": " << r.tokens << ",\n  \"nll\": ";
  write_json_number(j, r.tokens ? -r.sum_log_prob / static_cast<double>(r.tokens) : std::nan(""));
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
                          "model: " + fs::path(t.info.model_path).filename().string() +
                              ", data: " + fs::path(t.info.data_path).filename().string() + " (" +
                              std::to_string(r.tokens) + " tokens, window " + std::to_string(t.options.window) + ")");
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
  write_json_number(j, r.perplexity);
  j << ",\n  \"threshold\": ";
  write_json_float(j, r.threshold);
  j << ",\n  \"skip_ratio\": 0,\n  \"skip_ratio_eligible\": 0,\n  \"skip_ratio_after_warmup\": 0,\n"
    << "  \"layers\": [";
  for (std::size_t i = 0; i < r.layers.size(); ++i) {
    ev::LayerProfile const& l = r.layers[i];
    j << (i ? ",\n" : "\n") << "    {\"layer\": " << l.layer << ", \"count\": " << l.cosine.count << ", \"mean\": ";
    write_json_number(j, l.cosine.mean);
    j << ", \"std\": ";
    write_json_number(j, l.cosine.stddev);
    j << ", \"min\": ";
    write_json_number(j, l.cosine.min);
    j << ", \"p10\": ";
    write_json_number(j, l.cosine.p10);
    j << ", \"median\": ";
    write_json_number(j, l.cosine.median);
    j << ", \"p90\": ";
    write_json_number(j, l.cosine.p90);
    j << ", \"max\": ";
    write_json_number(j, l.cosine.max);
    j << ", \"above_threshold\": ";
    write_json_number(j, l.above_threshold);
    j << "}";
  }
  j << "\n  ],\n";
  return out;
}

void write_compare_item_json(std::ostream& j, ev::CompareItemResult const& x) {
  j << "    {\"id\": ";
  write_json_string(j, x.id);
  j << ", \"line\": " << x.line << ", \"prompt_tokens\": " << x.prompt_tokens;
  if (!x.bucket.empty()) {
    j << ", \"bucket\": ";
    write_json_string(j, x.bucket);
  }
  j << ", \"text\": ";
  write_json_string(j, x.skip.text);
  j << ", \"dense_text\": ";
  write_json_string(j, x.dense.text);
  j << ", \"stop_reason\": ";
  write_json_string(j, x.skip.stop_reason);
  j << ", \"dense_stop_reason\": ";
  write_json_string(j, x.dense.stop_reason);
  j << ", \"tokens\": " << x.skip.tokens.size() << ", \"dense_tokens\": " << x.dense.tokens.size()
    << ", \"first_divergence\": " << x.agreement.first_divergence << ", \"token_agreement_prefix\": ";
  write_json_number(j, x.agreement.prefix_rate);
  j << ", \"token_agreement\": ";
  write_json_number(j, x.agreement.overall_rate);
  j << ", \"rouge_l_vs_dense\": ";
  write_rouge(j, x.rouge_vs_dense);
  j << ", \"rouge_l_vs_reference\": ";
  if (x.rouge_vs_reference)
    write_rouge(j, *x.rouge_vs_reference);
  else
    j << "null";
  j << ", \"dense_rouge_l_vs_reference\": ";
  if (x.dense_rouge_vs_reference)
    write_rouge(j, *x.dense_rouge_vs_reference);
  else
    j << "null";
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
  write_json_number(j, s.overall_rate);
  j << ",\n  \"token_agreement_prefix\": ";
  write_json_number(j, s.prefix_rate);
  j << ",\n  \"rouge_l_vs_dense\": ";
  write_json_number(j, s.rouge_vs_dense);
  j << ",\n  \"rouge_l_vs_reference\": ";
  write_json_number(j, s.rouge_vs_reference);
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
    {.task = EvalTask::factoid,
     .name = "factoid",
     .data_file = "factoid.jsonl",
     .max_tokens = 32,
     .takes_system = true,
     .read = [](fs::path const& p) -> TaskData { return ev::read_factoid(p); },
     .run = run_factoid_task},
    {.task = EvalTask::perplexity,
     .name = "perplexity",
     .data_file = "perplexity.txt",
     .text_input = true,
     .read = read_text_data,
     .run = run_perplexity_task},
    {.task = EvalTask::agreement,
     .name = "agreement",
     .data_file = "agreement.jsonl",
     .max_tokens = 64,
     .read = [](fs::path const& p) -> TaskData { return ev::read_prompts(p); },
     .run = [](TaskRun const& t) { return run_compare_task<ev::PromptItem>(t, ev::run_agreement); }},
    {.task = EvalTask::collapse,
     .name = "collapse",
     .data_file = "agreement.jsonl",
     .read = [](fs::path const& p) -> TaskData { return ev::read_prompts(p); },
     .run = [](TaskRun const& t) { return run_compare_task<ev::PromptItem>(t, ev::run_collapse); }},
    {.task = EvalTask::chat,
     .name = "chat",
     .data_file = "chat.jsonl",
     .read = [](fs::path const& p) -> TaskData { return ev::read_prompts(p); },
     .run = [](TaskRun const& t) { return run_compare_task<ev::PromptItem>(t, ev::run_chat); }},
    {.task = EvalTask::summarize,
     .name = "summarize",
     .data_file = "summarize.jsonl",
     .read = [](fs::path const& p) -> TaskData { return ev::read_summarize(p); },
     .run = [](TaskRun const& t) { return run_compare_task<ev::SummarizeItem>(t, ev::run_summarize); }},
    {.task = EvalTask::profile,
     .name = "profile",
     .data_file = "perplexity.txt",
     .text_input = true,
     .measures_dense = true,
     .plots = true,
     .read = read_text_data,
     .run = run_profile_task},
};

}  // namespace

std::size_t data_lines(TaskData const& data) {
  return std::visit([](auto const& d) { return d.file.lines; }, data);
}

std::size_t data_items(TaskData const& data) {
  return std::visit(
      [](auto const& d) -> std::size_t {
        if constexpr (std::is_same_v<std::decay_t<decltype(d)>, TextData>)
          return 0;
        else
          return d.items.size();
      },
      data);
}

std::span<TaskRow const> task_table() { return kTaskTable; }

TaskRow const& task_row(EvalTask task) {
  return *std::find_if(std::begin(kTaskTable), std::end(kTaskTable), [&](TaskRow const& r) { return r.task == task; });
}

}  // namespace skipllm::cli
