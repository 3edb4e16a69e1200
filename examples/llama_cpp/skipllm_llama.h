// skipllm inside llama.cpp: what the patched llama.cpp sees of the integration.
//
// Plain C++17 with no skipllm include, so llama.cpp's own sources compile unchanged; the
// implementation (skipllm_llama.cpp, C++20) is where skipllm's headers are used. The patch
// (llama.cpp-skipllm.patch) calls these functions at three places:
//
//   context init  Client::from_env(): the policy named by SKIPLLM_POLICY, or none (then the
//                 patched build runs llama.cpp's own code path, unchanged).
//   graph build   build_residual() in place of the residual add after each FFN; on decode
//                 ubatches (one token per sequence) also begin_graph(), then gate_ffn() on the
//                 FFN llama.cpp built for each skippable layer (its nodes become skippable).
//   compute       begin_ubatch() before and end_ubatch() after each ubatch's graph.
//
// Environment: SKIPLLM_POLICY=<policy config JSON> turns it on (docs/policy_config.md);
// SKIPLLM_TRACE=<file> writes the statistics with the per-token decision trace (skipllm.stats/2)
// when the context is freed; SKIPLLM_QUIET=1 leaves out the summary printed to stderr then.
#pragma once

#include <cstdint>
#include <memory>

struct ggml_cgraph;
struct ggml_context;
struct ggml_tensor;

namespace skipllm_llama {

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

  //! Whether layer `layer`'s FFN may skip (it is not cold).
  bool skippable(int layer) const noexcept;

  //! A decode graph `graph` is being built: forget what an earlier graph at that address had.
  void begin_graph(ggml_cgraph* graph);

  //! Layer `layer`'s FFN in `graph`, from `ffn_in` (its norm's output, excluded) to `ffn_out`:
  //! every node in between is computed only in steps where some row's decision runs the FFN.
  void gate_ffn(ggml_cgraph* graph, int layer, ggml_tensor* ffn_out, ggml_tensor* ffn_in);

  //! The residual add after layer `layer`'s FFN, in every graph of the context, prefill too:
  //! ggml's allocator reuses the previous graph's memory plan node by node when the node
  //! counts match, so prefill and decode graphs must agree on which nodes may work in place.
  //! In a decode step it adds ffn_out only for rows whose FFN ran (with the similarity, which
  //! the next decision reads), then decides the next layer. Not for the last layer (llama.cpp
  //! may drop rows before it; the policy keeps it cold).
  ggml_tensor* build_residual(ggml_context* ctx, int layer, ggml_tensor* ffn_out, ggml_tensor* ffn_inp);

  //! Before `graph` runs a ubatch. Token i belongs to the `n_seq_ids[i]` sequences
  //! `seq_ids[i][...]` at position `pos[i]`; a token at position 0 starts its sequences anew.
  void begin_ubatch(ggml_cgraph* graph, std::uint32_t n_tokens, std::uint32_t n_seqs_unq,
                    std::int32_t const* const* seq_ids, std::int32_t const* n_seq_ids, std::int32_t const* pos);
  //! After the graph ran: the step's decisions go into the statistics and the trace.
  void end_ubatch();

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace skipllm_llama
