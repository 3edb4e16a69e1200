// What every evaluation task shares (eval_tasks): the model a task runs on, greedy generation
// through the chat template, the dense counterpart of a policy, and the skip statistics of a run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <skipllm/statistics.hpp>
#include <skipllm/trace.hpp>

#include "format/tokenizer.hpp"
#include "model/generator.hpp"
#include "model/llama_model.hpp"
#include "model/thread_pool.hpp"

namespace skipllm::engine::eval {

using skipllm::policy::ConfigurablePolicies;

// ---- The model and generation ----------------------------------------------------------------

//! The decoding a task drives: one sequence at a time, prefill then decode, and the skip
//! statistics and trace of everything it decoded. Tasks see only this, so the same task code
//! runs on the CPU engine (cpu_task_generator) or on whatever EvalModel::generators makes (the
//! CLI's --device cuda: the CUDA engine, which eval itself never includes).
class TaskGenerator {
 public:
  virtual ~TaskGenerator() = default;
  //! Starts a new sequence with `prompt` (dense); the logits after its last token.
  virtual std::span<float const> prefill(std::span<std::int32_t const> prompt) = 0;
  //! Appends `token` (one decode step under the policy); the next logits.
  virtual std::span<float const> decode(std::int32_t token) = 0;
  virtual int position() const = 0;
  virtual int max_context() const = 0;
  //! Every decode step so far (a device generator downloads them here: read it when needed).
  virtual skipllm::SkipStatistics const& statistics() = 0;
  //! The decisions and scores recorded so far (with record_trace); the caller may clear it.
  virtual skipllm::DecisionTrace& trace() = 0;
};

//! What a task asks of a generator. Every task runs in the reference arithmetic
//! (eval/reference_arithmetic.hpp: fp32 activations and KV cache), whatever the device.
struct TaskGeneratorSpec {
  skipllm::policy::ConfigurablePolicies policies;
  int max_context = 0;
  bool record_trace = false;
  bool skip_attention = false;  //!< GeneratorOptions::skip_attention
};

//! Makes a task's generator; an empty function means the CPU engine (cpu_task_generator).
using GeneratorFactory = std::function<std::unique_ptr<TaskGenerator>(TaskGeneratorSpec const&)>;

//! What a task needs of the loaded model.
struct EvalModel {
  LlamaModel const& model;
  Tokenizer const& tokenizer;
  ThreadPool& pool;
  bool add_bos = false;              //!< prepend BOS (the GGUF's tokenizer.ggml.add_bos_token)
  int max_context = 2048;            //!< tokens of context a task may use (prompt + generation)
  bool skip_attention = false;       //!< the policy's runs skip whole layers (GeneratorOptions::skip_attention)
  GeneratorFactory generators = {};  //!< where the tasks decode; empty: the CPU engine
};

//! The CPU engine's Generator in the reference arithmetic, as a TaskGenerator.
std::unique_ptr<TaskGenerator> cpu_task_generator(LlamaModel const& model, ThreadPool& pool,
                                                  TaskGeneratorSpec const& spec);

//! The generator of `m` for `spec`: m.generators when set, else cpu_task_generator.
std::unique_ptr<TaskGenerator> make_task_generator(EvalModel const& m, TaskGeneratorSpec const& spec);

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
Generation generate_greedy(TaskGenerator& generator, Tokenizer const& tokenizer, std::span<std::int32_t const> prompt,
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
