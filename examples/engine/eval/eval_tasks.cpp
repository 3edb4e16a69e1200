#include "eval/eval_tasks.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>

#include <skipllm/policy/describe.hpp>

#include "eval/timing.hpp"

namespace skipllm::engine::eval {

namespace {

double nan() { return std::numeric_limits<double>::quiet_NaN(); }

// The context a generator needs for prompts of up to `longest` tokens plus `max_tokens`.
int context_for(EvalModel const& m, std::size_t longest, int max_tokens) {
  std::int64_t const want = static_cast<std::int64_t>(longest) + max_tokens + 1;
  return static_cast<int>(std::clamp<std::int64_t>(want, 2, std::max(m.max_context, 2)));
}

void check_fits(std::size_t tokens, int context, std::string const& what) {
  if (tokens >= static_cast<std::size_t>(context)) {
    throw DataError(what + ": the prompt has " + std::to_string(tokens) + " tokens but the context holds " +
                    std::to_string(context) + " (raise --ctx)");
  }
}

}  // namespace

// ---- factoid -------------------------------------------------------------------------------------

FactoidResult run_factoid(EvalModel const& m, ConfigurablePolicies const& policies, std::span<FactoidItem const> items,
                          FactoidOptions const& options, ProgressFn const& progress) {
  Clock::time_point const start = Clock::now();
  std::vector<std::vector<std::int32_t>> prompts;
  std::size_t longest = 0;
  for (FactoidItem const& item : items) {
    std::vector<ChatMessage> messages;
    if (options.system) messages.push_back({"system", *options.system});
    messages.push_back({"user", item.question});
    prompts.push_back(chat_prompt_tokens(m, messages));
    longest = std::max(longest, prompts.back().size());
  }
  int const context = context_for(m, longest, options.max_tokens);
  for (std::size_t i = 0; i < items.size(); ++i)
    check_fits(prompts[i].size(), context, "line " + std::to_string(items[i].line));

  std::unique_ptr<TaskGenerator> const generator =
      make_task_generator(m, {.policies = policies, .max_context = context, .skip_attention = m.skip_attention});
  FactoidResult r;
  for (std::size_t i = 0; i < items.size(); ++i) {
    FactoidItem const& item = items[i];
    Generation const g = generate_greedy(*generator, m.tokenizer, prompts[i], options.max_tokens);
    FactoidItemResult x;
    x.id = item.id;
    x.line = item.line;
    x.question = item.question;
    x.answers = item.answers;
    x.output = g.text;
    x.matched_answer = first_matching_answer(item.answers, g.text);
    x.correct = x.matched_answer >= 0;
    x.prompt_tokens = g.prompt_tokens;
    x.generated_tokens = g.tokens.size();
    x.stop_reason = g.stop_reason;
    x.skipped_blocks = g.skipped_blocks;
    x.ffn_blocks = g.ffn_blocks;
    r.correct += x.correct ? 1 : 0;
    r.items.push_back(std::move(x));
    if (progress) progress(i + 1, items.size());
  }
  r.n = items.size();
  r.accuracy = r.n ? static_cast<double>(r.correct) / static_cast<double>(r.n) : 0.0;
  r.set_statistics(generator->statistics());
  r.seconds = seconds_since(start);
  return r;
}

// ---- perplexity and profile ----------------------------------------------------------------------

std::vector<Window> plan_windows(std::size_t tokens, int window, int stride, bool bos) {
  if (window < 2) throw std::invalid_argument("eval: the window must hold at least 2 tokens");
  if (stride < 1 || stride > window) throw std::invalid_argument("eval: the stride must be between 1 and the window");
  std::vector<Window> out;
  std::size_t const w = static_cast<std::size_t>(window), s = static_cast<std::size_t>(stride);
  std::size_t prev_end = 0;
  for (std::size_t begin = 0; begin < tokens; begin += s) {
    Window win;
    win.begin = begin;
    win.end = std::min(begin + w, tokens);
    win.score_begin = std::max(begin + (bos ? 0 : 1), prev_end);
    if (win.score_begin < win.end) out.push_back(win);
    prev_end = win.end;
    if (win.end == tokens) break;
  }
  return out;
}

namespace {

struct FeedOutcome {
  double sum_log_prob = 0;
  std::int64_t scored = 0;
  std::size_t windows = 0;
};

// Feeds `tokens` window by window through `generator` (see run_perplexity), scoring every
// prediction in the windows' score ranges. After each decode step whose prediction is scored,
// `on_scored_step` (if any) is called.
FeedOutcome feed_text(EvalModel const& m, TaskGenerator& generator, std::span<std::int32_t const> tokens, int window,
                      int stride, ProgressFn const& progress, std::function<void()> const& on_scored_step) {
  bool const bos = m.add_bos && m.tokenizer.bos_id() >= 0;
  std::vector<Window> const plan = plan_windows(tokens.size(), window, stride, bos);
  std::size_t const offset = bos ? 1 : 0;
  std::size_t total = 0;
  for (Window const& w : plan) total += w.end - w.begin + offset - 1;
  std::size_t done = 0;
  FeedOutcome out;
  std::vector<std::int32_t> seq;
  for (Window const& w : plan) {
    seq.clear();
    if (bos) seq.push_back(m.tokenizer.bos_id());
    seq.insert(seq.end(), tokens.begin() + static_cast<std::ptrdiff_t>(w.begin),
               tokens.begin() + static_cast<std::ptrdiff_t>(w.end));
    // seq[k]'s logits predict seq[k + 1] = tokens[w.begin + k + 1 - offset].
    std::span<float const> logits = generator.prefill(std::span<std::int32_t const>(seq.data(), 1));
    for (std::size_t k = 0; k + 1 < seq.size(); ++k) {
      if (k > 0) logits = generator.decode(seq[k]);
      std::size_t const target = w.begin + k + 1 - offset;
      if (target >= w.score_begin) {
        out.sum_log_prob += token_log_prob(logits, tokens[target]);
        ++out.scored;
        if (k > 0 && on_scored_step) on_scored_step();
      }
      ++done;
      if (progress) progress(done, total);
    }
    ++out.windows;
  }
  return out;
}

int resolved_stride(int window, int stride) { return stride > 0 ? stride : std::max(1, window / 2); }

std::vector<std::int32_t> text_tokens(EvalModel const& m, std::string_view text) {
  std::vector<std::int32_t> t = m.tokenizer.encode(text, false);
  if (t.size() < 2) throw DataError("the text has fewer than 2 tokens: nothing to score");
  return t;
}

}  // namespace

PerplexityResult run_perplexity(EvalModel const& m, ConfigurablePolicies const& policies, std::string_view text,
                                PerplexityOptions const& options, ProgressFn const& progress) {
  Clock::time_point const start = Clock::now();
  std::vector<std::int32_t> const tokens = text_tokens(m, text);
  PerplexityResult r;
  r.window = options.window;
  r.stride = resolved_stride(options.window, options.stride);
  r.text_tokens = static_cast<std::int64_t>(tokens.size());
  std::unique_ptr<TaskGenerator> const generator = make_task_generator(
      m, {.policies = policies, .max_context = options.window + 1, .skip_attention = m.skip_attention});
  FeedOutcome const f = feed_text(m, *generator, tokens, r.window, r.stride, progress, {});
  r.sum_log_prob = f.sum_log_prob;
  r.tokens = f.scored;
  r.windows = f.windows;
  r.perplexity = perplexity_from_sum(f.sum_log_prob, f.scored);
  r.set_statistics(generator->statistics());
  r.seconds = seconds_since(start);
  return r;
}

ConfigurablePolicies profile_policies(float threshold) {
  // The greedy rule with no spans never skips; it carries tau into the description.
  return {skipllm::policy::Greedy{threshold, 1, 0}, {0, 0, {}}, {0, 0}};
}

ProfileResult run_profile(EvalModel const& m, std::string_view text, ProfileOptions const& options,
                          ProgressFn const& progress) {
  Clock::time_point const start = Clock::now();
  std::vector<std::int32_t> const tokens = text_tokens(m, text);
  ConfigurablePolicies const dense = profile_policies(options.threshold);
  std::unique_ptr<TaskGenerator> const generator =
      make_task_generator(m, {.policies = dense, .max_context = options.window + 1, .record_trace = true});
  int const layers = m.model.config().n_layers;
  std::vector<std::vector<double>> scores(static_cast<std::size_t>(layers));
  auto const collect = [&] {
    DecisionTrace& trace = generator->trace();
    if (trace.size() == 0) return;
    std::span<float const> const s = trace.scores(trace.size() - 1);
    for (int l = 0; l < layers; ++l) scores[static_cast<std::size_t>(l)].push_back(s[static_cast<std::size_t>(l)]);
    trace.clear();
  };
  // (Steps whose prediction is not scored leave their row in the trace; collect clears it.)
  FeedOutcome const f = feed_text(m, *generator, tokens, options.window,
                                  resolved_stride(options.window, options.stride), progress, collect);
  ProfileResult r;
  r.threshold = options.threshold;
  r.windows = f.windows;
  r.perplexity = perplexity_from_sum(f.sum_log_prob, f.scored);
  r.policy = skipllm::describe(dense);
  for (int l = 0; l < layers; ++l) {
    std::vector<double> const& v = scores[static_cast<std::size_t>(l)];
    LayerProfile p;
    p.layer = l;
    p.cosine = describe_values(v);
    std::size_t above = 0, finite = 0;
    for (double const x : v) {
      if (!std::isfinite(x)) continue;
      ++finite;
      above += x > static_cast<double>(options.threshold) ? 1 : 0;
    }
    p.above_threshold = finite ? static_cast<double>(above) / static_cast<double>(finite) : nan();
    r.layers.push_back(p);
  }
  r.tokens = layers > 0 ? static_cast<std::int64_t>(scores[0].size()) : 0;
  r.seconds = seconds_since(start);
  return r;
}

// ---- agreement, collapse, chat, summarize --------------------------------------------------------

std::string summarize_prompt(std::string_view document) {
  std::string p(kSummarizeInstruction);
  p += "\n\n";
  p += document;
  while (!p.empty() && (p.back() == '\n' || p.back() == ' ' || p.back() == '\r')) p.pop_back();
  return p;
}

std::string length_bucket(std::size_t prompt_tokens) {
  if (prompt_tokens < kShortPromptTokens) return "short";
  if (prompt_tokens < kLongPromptTokens) return "medium";
  return "long";
}

CompareSummary summarize_items(std::span<CompareItemResult const> items, std::string const& bucket) {
  CompareSummary s;
  s.bucket = bucket;
  s.n = items.size();
  if (items.empty()) return s;
  std::vector<double> prefix, overall, divergence, rouge, ref, dense_ref, d1, d2, d3, rep, dd2, drep, st, dt;
  for (CompareItemResult const& i : items) {
    s.identical += i.agreement.identical ? 1 : 0;
    prefix.push_back(i.agreement.prefix_rate);
    overall.push_back(i.agreement.overall_rate);
    divergence.push_back(static_cast<double>(i.agreement.first_divergence));
    rouge.push_back(i.rouge_vs_dense.f1);
    if (i.rouge_vs_reference) {
      ++s.with_reference;
      ref.push_back(i.rouge_vs_reference->f1);
      dense_ref.push_back(i.dense_rouge_vs_reference ? i.dense_rouge_vs_reference->f1 : nan());
    }
    d1.push_back(i.collapse.distinct_1);
    d2.push_back(i.collapse.distinct_2);
    d3.push_back(i.collapse.distinct_3);
    rep.push_back(static_cast<double>(i.collapse.longest_repeat));
    s.collapsed += i.collapse.collapsed ? 1 : 0;
    dd2.push_back(i.dense_collapse.distinct_2);
    drep.push_back(static_cast<double>(i.dense_collapse.longest_repeat));
    s.dense_collapsed += i.dense_collapse.collapsed ? 1 : 0;
    st.push_back(static_cast<double>(i.skip.tokens.size()));
    dt.push_back(static_cast<double>(i.dense.tokens.size()));
  }
  s.prefix_rate = finite_mean(prefix);
  s.overall_rate = finite_mean(overall);
  s.first_divergence = finite_mean(divergence);
  s.rouge_vs_dense = finite_mean(rouge);
  s.rouge_vs_reference = finite_mean(ref);
  s.dense_rouge_vs_reference = finite_mean(dense_ref);
  s.distinct_1 = finite_mean(d1);
  s.distinct_2 = finite_mean(d2);
  s.distinct_3 = finite_mean(d3);
  s.longest_repeat = finite_mean(rep);
  s.dense_distinct_2 = finite_mean(dd2);
  s.dense_longest_repeat = finite_mean(drep);
  s.skip_tokens = finite_mean(st);
  s.dense_tokens = finite_mean(dt);
  return s;
}

CompareResult run_compare(EvalModel const& m, ConfigurablePolicies const& policies, std::span<PromptItem const> items,
                          CompareOptions const& options, ProgressFn const& progress) {
  Clock::time_point const start = Clock::now();
  std::vector<std::vector<std::int32_t>> prompts;
  std::size_t longest = 0;
  for (PromptItem const& item : items) {
    prompts.push_back(chat_prompt_tokens(m, item.messages));
    longest = std::max(longest, prompts.back().size());
  }
  int const context = context_for(m, longest, options.max_tokens);
  for (std::size_t i = 0; i < items.size(); ++i)
    check_fits(prompts[i].size(), context, "line " + std::to_string(items[i].line));

  // A policy that cannot skip produces the dense generation itself.
  bool const dense_run = options.with_dense && can_skip(policies);
  ConfigurablePolicies const dense_policies = dense_version(policies);
  std::unique_ptr<TaskGenerator> const generator =
      make_task_generator(m, {.policies = policies, .max_context = context, .skip_attention = m.skip_attention});
  std::unique_ptr<TaskGenerator> const dense_generator =
      dense_run ? make_task_generator(m, {.policies = dense_policies, .max_context = context}) : nullptr;

  CompareResult r;
  r.dense_run = dense_run;
  for (std::size_t i = 0; i < items.size(); ++i) {
    PromptItem const& item = items[i];
    CompareItemResult x;
    x.id = item.id;
    x.line = item.line;
    x.prompt_tokens = prompts[i].size();
    x.skip = generate_greedy(*generator, m.tokenizer, prompts[i], options.max_tokens);
    x.dense = dense_run ? generate_greedy(*dense_generator, m.tokenizer, prompts[i], options.max_tokens) : x.skip;
    x.agreement = token_agreement(x.dense.tokens, x.skip.tokens);
    x.rouge_vs_dense = rouge_l(x.skip.text, x.dense.text);
    if (item.reference) {
      x.rouge_vs_reference = rouge_l(x.skip.text, *item.reference);
      x.dense_rouge_vs_reference = rouge_l(x.dense.text, *item.reference);
    }
    x.collapse = collapse_metrics(x.skip.tokens);
    x.dense_collapse = collapse_metrics(x.dense.tokens);
    r.items.push_back(std::move(x));
    if (progress) progress(i + 1, items.size());
  }
  r.summary = summarize_items(r.items);
  r.set_statistics(generator->statistics());
  r.seconds = seconds_since(start);
  return r;
}

CompareResult run_agreement(EvalModel const& m, ConfigurablePolicies const& policies, std::span<PromptItem const> items,
                            CompareOptions const& options, ProgressFn const& progress) {
  return run_compare(m, policies, items, options, progress);
}

CompareResult run_collapse(EvalModel const& m, ConfigurablePolicies const& policies, std::span<PromptItem const> items,
                           CompareOptions const& options, ProgressFn const& progress) {
  return run_compare(m, policies, items, options, progress);
}

CompareResult run_chat(EvalModel const& m, ConfigurablePolicies const& policies, std::span<PromptItem const> items,
                       CompareOptions const& options, ProgressFn const& progress) {
  return run_compare(m, policies, items, options, progress);
}

CompareResult run_summarize(EvalModel const& m, ConfigurablePolicies const& policies,
                            std::span<SummarizeItem const> items, CompareOptions const& options,
                            ProgressFn const& progress) {
  std::vector<PromptItem> prompts;
  for (SummarizeItem const& s : items) {
    PromptItem p;
    p.id = s.id;
    p.line = s.line;
    p.reference = s.reference;
    p.messages.push_back({"user", summarize_prompt(s.document)});
    prompts.push_back(std::move(p));
  }
  CompareResult r = run_compare(m, policies, prompts, options, progress);
  for (CompareItemResult& x : r.items) x.bucket = length_bucket(x.prompt_tokens);
  for (char const* bucket : {"short", "medium", "long"}) {
    std::vector<CompareItemResult> in;
    for (CompareItemResult const& x : r.items) {
      if (x.bucket == bucket) in.push_back(x);
    }
    if (!in.empty()) r.buckets.push_back(summarize_items(in, bucket));
  }
  return r;
}

}  // namespace skipllm::engine::eval
