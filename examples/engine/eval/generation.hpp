// What every evaluation task shares (eval_tasks): the model a task runs on, greedy generation
// through the chat template, the dense counterpart of a policy, and the skip statistics of a run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <skipllm/statistics.hpp>

#include "format/tokenizer.hpp"
#include "model/generator.hpp"
#include "model/llama_model.hpp"
#include "model/thread_pool.hpp"

namespace skipllm::engine::eval {

using skipllm::policy::ConfigurablePolicies;

// ---- The model and generation ----------------------------------------------------------------

//! What a task needs of the loaded model.
struct EvalModel {
  LlamaModel const& model;
  Tokenizer const& tokenizer;
  ThreadPool& pool;
  bool add_bos = false;         //!< prepend BOS (the GGUF's tokenizer.ggml.add_bos_token)
  int max_context = 2048;       //!< tokens of context a task may use (prompt + generation)
  bool skip_attention = false;  //!< the policy's runs skip whole layers (GeneratorOptions::skip_attention)
};

//! Progress of a task: `done` of `total` units (items, or tokens for perplexity and profile).
using ProgressFn = std::function<void(std::size_t done, std::size_t total)>;

//! [BOS] + ChatML(messages, generation prompt), tokenized with control tokens recognised.
std::vector<std::int32_t> chat_prompt_tokens(EvalModel const& m, std::span<ChatMessage const> messages);

struct Generation {
  std::vector<std::int32_t> tokens;  //!< generated, without the end-of-generation token
  std::string text;
  std::string stop_reason;  //!< "eos", "max_tokens" or "context_full"
  std::size_t prompt_tokens = 0;
  std::uint64_t skipped_blocks = 0;  //!< this generation's share of the generator's statistics
  std::uint64_t ffn_blocks = 0;
};

//! Greedy generation of at most `max_tokens` tokens after `prompt` (dense prefill, then one
//! decode step per token until an end-of-generation token, max_tokens or a full context).
Generation generate_greedy(Generator& generator, Tokenizer const& tokenizer, std::span<std::int32_t const> prompt,
                           int max_tokens);

//! Whether `p` can skip anything (a greedy rule with spans, the random-window baseline, a
//! non-empty static mask).
bool can_skip(ConfigurablePolicies const& p);
//! `p` made dense through the same code path: policy::Dense, same cold layers and warm-up
//! (its generator runs without EvalModel::skip_attention).
ConfigurablePolicies dense_version(ConfigurablePolicies p);

// ---- Results shared by every task ------------------------------------------------------------

struct RunStats {
  skipllm::SkipStatistics statistics;  //!< decode steps of the policy run (prefill counted apart)
  double skip_ratio = 0;               //!< skipped / all FFN blocks of decode steps
  double skip_ratio_eligible = 0;      //!< skipped / blocks the policy could skip
  double skip_ratio_after_warmup = 0;  //!< the authors' figure (see docs/statistics.md)
  double seconds = 0;                  //!< wall time of the task (both runs where there are two)

  void set_statistics(skipllm::SkipStatistics const& s);
};

}  // namespace skipllm::engine::eval
