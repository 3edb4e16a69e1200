#include "eval/generation.hpp"

#include <random>

namespace skipllm::engine::eval {

std::vector<std::int32_t> chat_prompt_tokens(EvalModel const& m, std::span<ChatMessage const> messages) {
  std::vector<std::int32_t> ids;
  if (m.add_bos && m.tokenizer.bos_id() >= 0) ids.push_back(m.tokenizer.bos_id());
  std::vector<std::int32_t> const body = m.tokenizer.encode(apply_chat_template(messages, true), true);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

Generation generate_greedy(Generator& generator, Tokenizer const& tokenizer, std::span<std::int32_t const> prompt,
                           int max_tokens) {
  Generation g;
  g.prompt_tokens = prompt.size();
  skipllm::SkipStatistics const& stats = generator.stack().statistics();
  std::uint64_t const skipped0 = stats.skipped_blocks(), blocks0 = stats.ffn_blocks();
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
  g.skipped_blocks = stats.skipped_blocks() - skipped0;
  g.ffn_blocks = stats.ffn_blocks() - blocks0;
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
