// skipllm inside llama.cpp: what the patched llama.cpp sees of the integration.
//
// Plain C++17 with no skipllm include, so llama.cpp's own sources compile unchanged; the
// implementation (skipllm_llama.cpp, C++20) is where skipllm's headers are used. The patch
// (llama.cpp-skipllm.patch) calls these functions at four places:
//
//   model load    ffn_in_custom_ops(): the FFN weights of skippable layers stay in plain CPU
//                 buffers (the custom ops read ggml's row layout; repacked weights would not be).
//   context init  Client::from_env(): the policy named by SKIPLLM_POLICY, or none (then the
//                 patched build runs llama.cpp's own code path, unchanged).
//   graph build   on decode ubatches (one token per sequence), each layer's FFN residual add
//                 becomes Client::build_residual() (add + similarity + next decision) and the
//                 FFN of each skippable layer Client::build_ffn() (a chain of custom ops that
//                 read the weights only for rows whose decision runs the FFN).
//   compute       Client::begin_ubatch() before and end_ubatch() after each ubatch's graph.
//
// Environment: SKIPLLM_POLICY=<policy config JSON> turns it on (docs/policy_config.md);
// SKIPLLM_TRACE=<file> writes the statistics with the per-token decision trace (skipllm.stats/2)
// when the context is freed; SKIPLLM_QUIET=1 leaves out the summary printed to stderr then.
#pragma once

#include <cstdint>
#include <memory>

struct ggml_context;
struct ggml_tensor;

namespace skipllm_llama {

//! Whether the FFN weights of layer `layer` (of `num_layers`) are read by skipllm's custom ops
//! under the policy named by SKIPLLM_POLICY: false when it is unset or the layer is cold.
//! Throws std::runtime_error when the policy file is bad.
bool ffn_in_custom_ops(int layer, int num_layers);

class Client {
 public:
  //! The client for a context, or null when SKIPLLM_POLICY is unset. Throws
  //! std::runtime_error with the file and the reason when the policy cannot be used.
  static std::unique_ptr<Client> from_env(int num_layers, int max_sequences);
  ~Client();
  Client(Client const&) = delete;
  Client& operator=(Client const&) = delete;

  //! A ubatch is a decode step when every token belongs to a sequence of its own; any other
  //! ubatch (a prompt, or a chunk of one) is prefill and runs densely.
  static bool is_decode(std::uint32_t n_tokens, std::uint32_t n_seqs_unq) noexcept;

  //! Whether layer `layer`'s FFN may skip (not cold): its decode graph uses build_ffn().
  bool skippable(int layer) const noexcept;

  //! The FFN of a skippable layer for a decode graph: `normed` [n_embd, rows] (the FFN norm's
  //! output) through SwiGLU(gate, up) and down, computed only for rows whose decision runs it.
  //! Returns the FFN output [n_embd, rows] (rows that skip hold garbage: build_residual
  //! ignores them).
  ggml_tensor* build_ffn(ggml_context* ctx, int layer, ggml_tensor* normed, ggml_tensor* up, ggml_tensor* gate,
                         ggml_tensor* down);

  //! The residual add after layer `layer`'s FFN in a decode graph: ffn_inp + ffn_out for rows
  //! whose FFN ran (with the similarity, which the next decision reads), ffn_inp for rows that
  //! skipped; then the next layer's decisions. Not for the last layer (llama.cpp may drop rows
  //! before it; the policy keeps it cold).
  ggml_tensor* build_residual(ggml_context* ctx, int layer, ggml_tensor* ffn_out, ggml_tensor* ffn_inp);

  //! Before a ubatch's graph runs. Token i belongs to the `n_seq_ids[i]` sequences
  //! `seq_ids[i][...]` at position `pos[i]`; a token at position 0 starts its sequences anew.
  void begin_ubatch(std::uint32_t n_tokens, std::uint32_t n_seqs_unq, std::int32_t const* const* seq_ids,
                    std::int32_t const* n_seq_ids, std::int32_t const* pos);
  //! After the graph ran: the step's decisions go into the statistics and the trace.
  void end_ubatch();

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace skipllm_llama
