// The evaluation tasks of `skipllm eval` (docs/eval.md), as library functions so that the CLI,
// `skipllm calibrate` and the tests share them: one function per task returning its metrics
// together with the skip statistics of the run. Their data comes from eval/datasets, their
// generation from eval/generation; eval/profile_svg draws the similarity profile.
//
// Every task decodes with greedy sampling on one sequence; prefill is dense (as everywhere in
// skipllm), so a policy acts on decode steps only. Perplexity and the similarity profile
// therefore feed the text one token per decode step (see run_perplexity).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eval/datasets.hpp"
#include "eval/eval_metrics.hpp"
#include "eval/generation.hpp"

namespace skipllm::engine::eval {

// ---- factoid ---------------------------------------------------------------------------------

struct FactoidOptions {
  int max_tokens = 32;
  std::optional<std::string> system;  //!< system message (default: the model's)
};

struct FactoidItemResult {
  std::string id;
  std::size_t line = 0;
  std::string question;
  std::vector<std::string> answers;
  std::string output;
  bool correct = false;
  int matched_answer = -1;  //!< index into answers
  std::size_t prompt_tokens = 0, generated_tokens = 0;
  std::string stop_reason;
  std::uint64_t skipped_blocks = 0, ffn_blocks = 0;
};

struct FactoidResult : RunStats {
  std::size_t n = 0, correct = 0;
  double accuracy = 0;  //!< correct / n (0 when n is 0)
  std::vector<FactoidItemResult> items;
};

//! Asks each question as one user message through the chat template, generates greedily up
//! to max_tokens (stopping at end of generation), and scores with first_matching_answer.
FactoidResult run_factoid(EvalModel const& m, ConfigurablePolicies const& policies, std::span<FactoidItem const> items,
                          FactoidOptions const& options, ProgressFn const& progress = {});

// ---- perplexity ------------------------------------------------------------------------------

//! One sliding window over the text's tokens: positions [begin, end) are fed, and the
//! predictions of positions [score_begin, end) are scored.
struct Window {
  std::size_t begin = 0, end = 0, score_begin = 0;
};

//! Windows of `window` tokens starting every `stride` tokens until one reaches the end; each
//! token position is scored once, in the first window that holds it with context before it.
//! Position 0 has no context and is not scored unless `bos` (a BOS token then precedes every
//! window). Needs window >= 2 and 1 <= stride <= window.
std::vector<Window> plan_windows(std::size_t tokens, int window, int stride, bool bos);

struct PerplexityOptions {
  int window = 512;
  int stride = 0;  //!< 0: window / 2
};

struct PerplexityResult : RunStats {
  double perplexity = 0;         //!< exp(-sum / tokens)
  double sum_log_prob = 0;       //!< natural log
  std::int64_t tokens = 0;       //!< tokens scored
  std::int64_t text_tokens = 0;  //!< tokens of the text
  std::size_t windows = 0;
  int window = 0, stride = 0;
};

//! Sliding-window perplexity with the policy active: each window starts a new sequence whose
//! first token (after BOS when the model wants one) is prefilled, densely; every later token is
//! fed through Generator::decode, one decode step per position, so the skip policy decides the
//! FFNs of every scored prediction but the window's first, and the warm-up counts from the
//! window start.
PerplexityResult run_perplexity(EvalModel const& m, ConfigurablePolicies const& policies, std::string_view text,
                                PerplexityOptions const& options, ProgressFn const& progress = {});

// ---- similarity profile ----------------------------------------------------------------------

struct ProfileOptions {
  int window = 512;
  int stride = 0;           //!< 0: window / 2
  float threshold = 0.95f;  //!< reported: the share of tokens whose score exceeds it, per layer
};

struct LayerProfile {
  int layer = 0;
  Distribution cosine;         //!< over the profiled tokens
  double above_threshold = 0;  //!< share of tokens with cosine > threshold
};

struct ProfileResult {
  std::vector<LayerProfile> layers;
  std::int64_t tokens = 0;  //!< decode steps profiled (each text position once)
  std::size_t windows = 0;
  float threshold = 0.95f;
  double perplexity = 0;  //!< dense perplexity of the same pass
  double seconds = 0;
  std::string policy;  //!< the dense policy the pass ran with (skipllm::describe)
};

//! The policy of run_profile: never skips, no cold layers, no warm-up; tau only for describe().
ConfigurablePolicies profile_policies(float threshold);

//! The dense per-layer similarity profile of a text: the text is fed as in run_perplexity with
//! a policy that never skips and has no cold layers or warm-up (Greedy with spans_per_token 0,
//! ColdLayers 0/0, Warmup 0), so every FFN runs and skipllm measures cos(h, h + FFN(h)) for
//! every layer of every decode step. Each text position is profiled once (its scored window).
ProfileResult run_profile(EvalModel const& m, std::string_view text, ProfileOptions const& options,
                          ProgressFn const& progress = {});

// ---- agreement, collapse, chat, summarize ----------------------------------------------------

//! The user message of the summarization task: kSummarizeInstruction, a blank line, the document.
inline constexpr std::string_view kSummarizeInstruction = "Summarize the following text in a few sentences.";
std::string summarize_prompt(std::string_view document);

struct CompareOptions {
  int max_tokens = 64;
  //! Also generate densely (needed for agreement and ROUGE-L vs dense). When the policy never
  //! skips (spans_per_token 0) the dense run is the policy run and is not repeated.
  bool with_dense = true;
};

struct CompareItemResult {
  std::string id;
  std::size_t line = 0;
  std::size_t prompt_tokens = 0;
  std::string bucket;  //!< summarize: length bucket of the prompt; else empty
  Generation dense, skip;
  TokenAgreement agreement;                  //!< skip vs dense tokens
  RougeL rouge_vs_dense;                     //!< skip text vs dense text
  std::optional<RougeL> rouge_vs_reference;  //!< skip text vs the item's reference
  std::optional<RougeL> dense_rouge_vs_reference;
  CollapseMetrics collapse, dense_collapse;
};

struct CompareSummary {
  std::string bucket;  //!< "" for all items
  std::size_t n = 0;
  std::size_t identical = 0;
  double prefix_rate = 0, overall_rate = 0, first_divergence = 0;  //!< means over items
  double rouge_vs_dense = 0;                                       //!< mean F1
  std::size_t with_reference = 0;
  double rouge_vs_reference = 0, dense_rouge_vs_reference = 0;                //!< mean F1 (NaN without references)
  double distinct_1 = 0, distinct_2 = 0, distinct_3 = 0, longest_repeat = 0;  //!< skip run, means
  std::size_t collapsed = 0;
  double dense_distinct_2 = 0, dense_longest_repeat = 0;
  std::size_t dense_collapsed = 0;
  double skip_tokens = 0, dense_tokens = 0;  //!< mean generated tokens
};

struct CompareResult : RunStats {
  std::vector<CompareItemResult> items;
  CompareSummary summary;               //!< all items
  std::vector<CompareSummary> buckets;  //!< summarize: per length bucket, in order short, medium, long
  bool dense_run = true;                //!< a separate dense generation was made
};

CompareSummary summarize_items(std::span<CompareItemResult const> items, std::string const& bucket = {});

//! Generates each conversation's next assistant turn densely and with the policy (greedy, up
//! to max_tokens, stopping at end of generation) and compares them.
CompareResult run_compare(EvalModel const& m, ConfigurablePolicies const& policies, std::span<PromptItem const> items,
                          CompareOptions const& options, ProgressFn const& progress = {});

//! The tasks on top of run_compare: agreement (default 64 tokens), collapse (128), chat (128;
//! ROUGE-L vs the reference turn when the data has one), summarize (128; the document wrapped
//! by summarize_prompt, results also per length bucket of the prompt).
CompareResult run_agreement(EvalModel const& m, ConfigurablePolicies const& policies, std::span<PromptItem const> items,
                            CompareOptions const& options, ProgressFn const& progress = {});
CompareResult run_collapse(EvalModel const& m, ConfigurablePolicies const& policies, std::span<PromptItem const> items,
                           CompareOptions const& options, ProgressFn const& progress = {});
CompareResult run_chat(EvalModel const& m, ConfigurablePolicies const& policies, std::span<PromptItem const> items,
                       CompareOptions const& options, ProgressFn const& progress = {});
CompareResult run_summarize(EvalModel const& m, ConfigurablePolicies const& policies,
                            std::span<SummarizeItem const> items, CompareOptions const& options,
                            ProgressFn const& progress = {});

//! Length buckets of the summarization prompts (tokens after templating).
inline constexpr std::size_t kShortPromptTokens = 400;  //!< short: fewer
inline constexpr std::size_t kLongPromptTokens = 1000;  //!< long: at least; medium in between
std::string length_bucket(std::size_t prompt_tokens);

}  // namespace skipllm::engine::eval
