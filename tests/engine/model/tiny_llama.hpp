// A tiny LLaMA model written as GGUF bytes in memory: 2 layers (or spec.layers), width 8, 2 query heads and 1
// KV head, FFN 16, a 16-token vocabulary ("a".."p", byte-level BPE without merges), context 32,
// F32 weights from a fixed formula. Small enough to build per test, so the engine's handling of
// bad runtime input (long prompts, a full KV cache, bad token ids, NaN weights) is tested without
// the real model. One weight can be replaced by NaN or Inf to corrupt the arithmetic on purpose.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/llama_model.hpp"

namespace engine_test {

struct TinyLlamaSpec {
  int context_length = 32;
  int layers = 2;
  //! The tensor whose element `poisoned_element` is replaced by `poison_value`, when given.
  std::optional<std::string> poisoned_tensor;
  float poison_value = std::numeric_limits<float>::quiet_NaN();
  std::int64_t poisoned_element = 0;
};

//! The GGUF v3 bytes of the tiny model.
inline std::string tiny_llama_gguf(TinyLlamaSpec const& spec = {}) {
  int const kLayers = spec.layers;
  constexpr int kEmbd = 8, kHeads = 2, kKvHeads = 1, kFf = 16, kVocab = 16;
  constexpr int kKvDim = kEmbd / kHeads * kKvHeads;
  constexpr std::uint32_t kU32 = 4, kF32 = 6, kString = 8, kArray = 9;

  std::string b;
  auto const raw = [&](auto v) { b.append(reinterpret_cast<char const*>(&v), sizeof v); };
  auto const str = [&](std::string const& s) {
    raw(std::uint64_t{s.size()});
    b += s;
  };
  auto const meta_u32 = [&](std::string const& k, std::uint32_t v) {
    str(k);
    raw(kU32);
    raw(v);
  };
  auto const meta_string_array = [&](std::string const& k, std::vector<std::string> const& values) {
    str(k);
    raw(kArray);
    raw(kString);
    raw(std::uint64_t{values.size()});
    for (std::string const& v : values) str(v);
  };

  struct Tensor {
    std::string name;
    std::int64_t cols, rows;  // ne[0], ne[1]; rows == 0: a vector
  };
  std::vector<Tensor> tensors = {{"token_embd.weight", kEmbd, kVocab}, {"output_norm.weight", kEmbd, 0}};
  for (int l = 0; l < kLayers; ++l) {
    std::string const p = "blk." + std::to_string(l) + ".";
    tensors.insert(tensors.end(), {{p + "attn_norm.weight", kEmbd, 0},
                                   {p + "attn_q.weight", kEmbd, kEmbd},
                                   {p + "attn_k.weight", kEmbd, kKvDim},
                                   {p + "attn_v.weight", kEmbd, kKvDim},
                                   {p + "attn_output.weight", kEmbd, kEmbd},
                                   {p + "ffn_norm.weight", kEmbd, 0},
                                   {p + "ffn_gate.weight", kEmbd, kFf},
                                   {p + "ffn_up.weight", kEmbd, kFf},
                                   {p + "ffn_down.weight", kFf, kEmbd}});
  }

  std::vector<std::string> vocab;
  for (char c = 'a'; c < 'a' + kVocab; ++c) vocab.emplace_back(1, c);

  b += "GGUF";
  raw(std::uint32_t{3});
  raw(std::uint64_t{tensors.size()});
  raw(std::uint64_t{11});  // metadata entries below
  str("general.architecture");
  raw(kString);
  str("llama");
  meta_u32("llama.block_count", static_cast<std::uint32_t>(kLayers));
  meta_u32("llama.embedding_length", kEmbd);
  meta_u32("llama.attention.head_count", kHeads);
  meta_u32("llama.attention.head_count_kv", kKvHeads);
  meta_u32("llama.feed_forward_length", kFf);
  meta_u32("llama.context_length", static_cast<std::uint32_t>(spec.context_length));
  str("llama.attention.layer_norm_rms_epsilon");
  raw(kF32);
  raw(1e-5f);
  str("tokenizer.ggml.model");
  raw(kString);
  str("gpt2");
  meta_string_array("tokenizer.ggml.tokens", vocab);
  meta_string_array("tokenizer.ggml.merges", {});

  std::uint64_t offset = 0;
  for (Tensor const& t : tensors) {
    str(t.name);
    raw(std::uint32_t{t.rows == 0 ? 1u : 2u});
    raw(std::uint64_t(t.cols));
    if (t.rows != 0) raw(std::uint64_t(t.rows));
    raw(std::uint32_t{0});  // F32
    raw(offset);
    offset += static_cast<std::uint64_t>(t.cols * std::max<std::int64_t>(t.rows, 1)) * 4;  // multiples of 32
  }
  b.resize((b.size() + 31) / 32 * 32, '\0');

  // Norms are 1; matrices hold small values from a fixed formula (no two rows alike).
  int seed = 0;
  for (Tensor const& t : tensors) {
    std::int64_t const n = t.cols * std::max<std::int64_t>(t.rows, 1);
    for (std::int64_t i = 0; i < n; ++i) {
      float v = t.rows == 0 ? 1.0f : 0.5f * static_cast<float>(std::sin(0.7 * static_cast<double>(i) + 1.3 * seed));
      if (i == spec.poisoned_element && spec.poisoned_tensor == t.name) v = spec.poison_value;
      raw(v);
    }
    ++seed;
  }
  return b;
}

//! The tiny model, parsed and ready for a Generator.
struct TinyLlama {
  explicit TinyLlama(TinyLlamaSpec const& spec = {}) : file(parse(tiny_llama_gguf(spec))), model(file) {}

  skipllm::engine::GgufFile file;
  skipllm::engine::LlamaModel model;

 private:
  static skipllm::engine::GgufFile parse(std::string const& bytes) {
    std::vector<std::byte> data(bytes.size());
    std::memcpy(data.data(), bytes.data(), bytes.size());
    return skipllm::engine::GgufFile::from_bytes(std::move(data), "tiny_llama");
  }
};

}  // namespace engine_test
