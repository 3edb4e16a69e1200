#include "eval/generation.hpp"

#include <random>

#include "eval/reference_arithmetic.hpp"

namespace skipllm::engine::eval {

std::vector<std::int32_t> chat_prompt_tokens(EvalModel const& m, std::span<ChatMessage const> messages) {
  std::vector<std::int32_t> ids;
  if (m.add_bos && m.tokenizer.bos_id() >= 0) ids.push_back(m.tokenizer.bos_id());
  std::vector<std::int32_t> const body = m.tokenizer.encode(apply_chat_template(messages, true), true);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

namespace {

// The CPU engine behind the task interface.
class CpuTaskGenerator final : public TaskGenerator {
 public:
  CpuTaskGenerator(LlamaModel const& model, ThreadPool& pool, TaskGeneratorSpec const& spec)
      : generator_(model, pool, spec.policies, spec.max_context,
                   reference_arithmetic({.record_trace = spec.record_trace, .skip_attention = spec.skip_attention})) {}
  std::span<float const> prefill(std::span<std::int32_t const> prompt) override { return generator_.prefill(prompt); }
  std::span<float const> decode(std::int32_t token) override { return generator_.decode(token); }
  int position() const override { return generator_.position(); }
  int max_context() const override { return generator_.max_context(); }
  skipllm::SkipStatistics const& statistics() override { return generator_.stack().statistics(); }
  skipllm::DecisionTrace& trace() override { return generator_.stack().trace(); }

 private:
  Generator generator_;
};

}  // namespace

std::unique_ptr<TaskGenerator> cpu_task_generator(LlamaModel const& model, ThreadPool& pool,
                                                  TaskGeneratorSpec const& spec) {
  return std::make_unique<CpuTaskGenerator>(model, pool, spec);
}

std::unique_ptr<TaskGenerator> make_task_generator(EvalModel const& m, TaskGeneratorSpec const& spec) {
  return m.generators ? m.generators(spec) : cpu_task_generator(m.model, m.pool, spec);
}

Generation generate_greedy(TaskGenerator& generator, Tokenizer const& tokenizer, std::span<std::int32_t const> prompt,
                           int max_tokens) {
  Generation g;
  g.prompt_tokens = prompt.size();
  // Read before and after (not one reference kept): a device generator downloads them when asked.
  skipllm::SkipStatistics const& before = generator.statistics();
  std::uint64_t const skipped0 = before.skipped_blocks(), blocks0 = before.ffn_blocks();
  SamplingOptions const greedy;
  std::mt19937_64 rng(0);
  std::span<float const> logits = generator.prefill(prompt);
  Utf8StreamDecoder utf8;
  g.stop_reason = "max_tokens";
  while (static_cast<int>(g.tokens.size()) < max_tokens) {
    std::int32_t const token = sample(logits, greedy, rng);
    if (tokenizer.is_eog(token)) {
      g.stop_reason = "eos";
      break;
    }
    g.tokens.push_back(token);
    g.text += utf8.push(tokenizer.token_piece(token));
    if (static_cast<int>(g.tokens.size()) >= max_tokens) break;
    if (generator.position() >= generator.max_context()) {
      g.stop_reason = "context_full";
      break;
    }
    logits = generator.decode(token);
  }
  g.text += utf8.flush();
  skipllm::SkipStatistics const& after = generator.statistics();
  g.skipped_blocks = after.skipped_blocks() - skipped0;
  g.ffn_blocks = after.ffn_blocks() - blocks0;
  return g;
}

void RunStats::set_statistics(skipllm::SkipStatistics const& s) {
  statistics = s;
  skip_ratio = s.skip_ratio();
  skip_ratio_eligible = s.skip_ratio_eligible();
  skip_ratio_after_warmup = s.skip_ratio_after_warmup();
}

bool can_skip(ConfigurablePolicies const& p) {
  using Kind = skipllm::policy::AnySkip::Kind;
  switch (p.skip.kind()) {
    case Kind::greedy: return p.skip.greedy()->spans_per_token > 0;
    case Kind::layer_thresholds: return p.skip.layer_thresholds()->spans_per_token > 0;
    case Kind::random_window: return true;
    case Kind::static_mask: return p.skip.static_mask()->layers.count() > 0;
    case Kind::dense: break;
  }
  return false;
}

ConfigurablePolicies dense_version(ConfigurablePolicies p) {
  p.skip = skipllm::policy::Dense{};
  return p;
}

}  // namespace skipllm::engine::eval
