// skipllm inside llama.cpp: the decision protocol driven from inside llama.cpp's decode graph.
//
// llama.cpp builds one graph per ubatch shape and replays it for every decode step, so the FFN
// of a layer cannot be left out of the graph once the previous layer's score is known. ggml
// already has graphs of constant topology whose nodes carry a compute flag
// (GGML_TENSOR_FLAG_COMPUTE, which ggml_build_forward_select sets), and the CPU backend reads
// that flag as it reaches each node. So the FFN stays llama.cpp's own (its kernels, repacked
// weights and all) and the node just before it decides whether it runs:
//
//   residual(l): x = h + f, score, decide layer l+1, set the flags of FFN(l+1)'s nodes
//     -> attention(l+1) -> FFN norm -> FFN(l+1) (computed only if some row runs it) -> residual(l+1)
//
// residual(l) is one custom op that replaces llama.cpp's residual add after every FFN but the
// last, in every graph of the context (prefill too, where it only adds), cold layers included,
// since a cold layer's score feeds the decision of the layer after it. The
// add and the score are one pass (skipllm::cpu::residual_add_similarity); the add gives the
// bits ggml's add gives. A SkipSession keeps the per-sequence state, statistics and trace, as in
// skipllm's own engine. A step with several sequences runs an FFN when any of its rows does
// (the weights are read once for all rows either way); rows that skip do not add its output.
#include "skipllm_llama.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <span>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include <ggml.h>
#include <skipllm/cpu/residual_similarity.hpp>
#include <skipllm/json.hpp>
#include <skipllm/policy/bundle.hpp>
#include <skipllm/policy/describe.hpp>
#include <skipllm/report.hpp>
#include <skipllm/skip_session.hpp>

#include "format/policy_config.hpp"

namespace skipllm_llama {

namespace {

using Policies = skipllm::policy::ConfigurablePolicies;
namespace engine = skipllm::engine;

char const* env(char const* name) {
  char const* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

// The policies of the config at `path` for a model of `num_layers` layers, refused with the
// reason when this integration cannot honour them.
Policies load_policies(std::string const& path, int num_layers) {
  engine::PolicyConfig const config = engine::load_policy_config(path);
  auto refuse = [&](std::string const& why) { throw std::runtime_error("skipllm: " + path + ": " + why); };
  if (!config.standin_file.empty()) refuse("stand-ins (policy.standin) are not supported in llama.cpp");
  if (config.skip_attention) refuse("policy.skip_attention (the layer-skip baseline) is not supported in llama.cpp");
  Policies policies = engine::make_policies(config, num_layers);
  if (!policies.cold.is_cold(num_layers - 1, num_layers)) {
    refuse(
        "the last layer must be cold (policy.cold.last >= 1): llama.cpp drops the rows that need no logits "
        "before the last layer's FFN, so its rows no longer line up with the sequences");
  }
  return policies;
}

bool skippable(Policies const& policies, int layer, int num_layers) {
  return !policies.cold.is_cold(layer, num_layers);
}

}  // namespace

struct Client::Impl {
  // The FFN nodes of each skippable layer of one decode graph ([num_layers]; empty: always run).
  using FfnNodes = std::vector<std::vector<ggml_tensor*>>;

  Impl(Policies const& p, std::string path, int layers, int max_sequences)
      : policies(p),
        policy_path(std::move(path)),
        num_layers(layers),
        session(p, layers, {.max_sequences = max_sequences, .record_trace = env("SKIPLLM_TRACE") != nullptr}),
        slots(static_cast<std::size_t>(max_sequences)) {
    for (int l = 0; l < layers; ++l) layer_ops.push_back({this, l});
  }

  ~Impl() { report(); }

  // Decides `layer` for every row of the step, and whether its FFN nodes run at all.
  void decide_layer(int layer) {
    bool any_runs = false;
    for (int r = 0; r < num_rows; ++r) any_runs |= skipllm::runs_ffn(session.decide(layer, r));
    for (ggml_tensor* node : (*ffn_nodes)[static_cast<std::size_t>(layer)]) {
      node->flags = any_runs ? (node->flags | GGML_TENSOR_FLAG_COMPUTE) : (node->flags & ~GGML_TENSOR_FLAG_COMPUTE);
    }
  }

  // A context that never ran a ubatch (llama.cpp's tools make throwaway ones) reports nothing.
  void report() {
    if (session.statistics().tokens() == 0 && session.statistics().prefill_tokens() == 0) return;
    std::string const policy = skipllm::describe(policies);
    if (env("SKIPLLM_QUIET") == nullptr) {
      std::cerr << "\nskipllm: FFN skipping in llama.cpp (" << policy_path << ")\n";
      skipllm::print_summary(std::cerr, session.statistics(), policy);
    }
    if (char const* path = env("SKIPLLM_TRACE")) {
      std::ofstream out(path);
      skipllm::write_json(out, session.statistics(), policy, &session.trace());
      if (!out) std::cerr << "skipllm: could not write the trace to " << path << "\n";
    }
  }

  // A custom op's userdata: its layer and the client (addresses stable for the client's life).
  struct LayerOp {
    Impl* impl;
    int layer;
  };

  Policies policies;
  std::string policy_path;
  int num_layers;
  skipllm::SkipSession<Policies> session;
  std::vector<LayerOp> layer_ops;                     // [num_layers]
  std::unordered_map<ggml_cgraph*, FfnNodes> graphs;  // the decode graphs built so far
  FfnNodes* ffn_nodes = nullptr;                      // the running graph's
  std::vector<int> slots;                             // [rows of the step]: each row's sequence id
  int num_rows = 0;
  bool in_step = false;
};

namespace {

// dst [n_embd, rows] = ffn_inp + ffn_out. In a decode step only the rows whose FFN ran add
// it, with their scores, and the next layer's decisions follow; in prefill every row adds it.
// ggml calls a custom op on every thread of the graph whatever its n_tasks, and the decisions
// must be made once: thread 0 does it all (a few vector adds).
void residual_op(ggml_tensor* dst, int ith, int, void* userdata) {
  if (ith != 0) return;
  auto const& op = *static_cast<Client::Impl::LayerOp const*>(userdata);
  Client::Impl& impl = *op.impl;
  ggml_tensor const* f = dst->src[0];
  ggml_tensor const* h = dst->src[1];
  std::int64_t const n = h->ne[0];
  auto row = [&](ggml_tensor const* t, std::int64_t r) {
    return reinterpret_cast<float*>(static_cast<char*>(t->data) + r * t->nb[1]);
  };
  for (std::int64_t r = 0; r < h->ne[1]; ++r) {
    std::memcpy(row(dst, r), row(h, r), static_cast<std::size_t>(n) * sizeof(float));
  }
  if (!impl.in_step) {
    for (std::int64_t r = 0; r < h->ne[1]; ++r) skipllm::cpu::residual_add(row(dst, r), row(f, r), n);
    return;
  }
  if (h->ne[1] != impl.num_rows) {
    GGML_ABORT("skipllm: layer %d has %lld rows, the decode step %d", op.layer, static_cast<long long>(h->ne[1]),
               impl.num_rows);
  }
  auto const decisions = impl.session.decisions(op.layer);
  for (int r = 0; r < impl.num_rows; ++r) {
    if (!skipllm::runs_ffn(decisions[static_cast<std::size_t>(r)])) continue;
    impl.session.observe(op.layer, r,
                         skipllm::cpu::residual_add_similarity<Policies::metric>(row(dst, r), row(f, r), n));
  }
  if (op.layer + 1 < impl.num_layers) impl.decide_layer(op.layer + 1);
}

// Every node `out` depends on, up to `in` and the weights (excluded).
void collect_nodes(ggml_tensor* out, ggml_tensor const* in, std::vector<ggml_tensor*>& nodes) {
  if (out == in || out->op == GGML_OP_NONE || std::find(nodes.begin(), nodes.end(), out) != nodes.end()) return;
  nodes.push_back(out);
  for (ggml_tensor* src : out->src) {
    if (src != nullptr) collect_nodes(src, in, nodes);
  }
}

}  // namespace

std::unique_ptr<Client> Client::from_env(int num_layers, int max_sequences) {
  char const* path = env("SKIPLLM_POLICY");
  if (path == nullptr) return nullptr;
  Policies const policies = load_policies(path, num_layers);
  return std::unique_ptr<Client>(new Client(std::make_unique<Impl>(policies, path, num_layers, max_sequences)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

bool Client::is_decode(std::uint32_t n_tokens, std::uint32_t n_seqs_unq) noexcept { return n_tokens == n_seqs_unq; }

bool Client::skippable(int layer) const noexcept {
  return skipllm_llama::skippable(impl_->policies, layer, impl_->num_layers);
}

void Client::begin_graph(ggml_cgraph* graph) {
  impl_->graphs[graph].assign(static_cast<std::size_t>(impl_->num_layers), {});
}

void Client::gate_ffn(ggml_cgraph* graph, int layer, ggml_tensor* ffn_out, ggml_tensor* ffn_in) {
  auto& nodes = impl_->graphs.at(graph)[static_cast<std::size_t>(layer)];
  nodes.clear();
  collect_nodes(ffn_out, ffn_in, nodes);
}

ggml_tensor* Client::build_residual(ggml_context* ctx, int layer, ggml_tensor* ffn_out, ggml_tensor* ffn_inp) {
  ggml_tensor* args[] = {ffn_out, ffn_inp};
  return ggml_custom_4d(ctx, GGML_TYPE_F32, ffn_inp->ne[0], ffn_inp->ne[1], 1, 1, args, 2, residual_op, 1,
                        &impl_->layer_ops[static_cast<std::size_t>(layer)]);
}

void Client::begin_ubatch(ggml_cgraph* graph, std::uint32_t n_tokens, std::uint32_t n_seqs_unq,
                          std::int32_t const* const* seq_ids, std::int32_t const* n_seq_ids, std::int32_t const* pos) {
  Impl& impl = *impl_;
  impl.in_step = is_decode(n_tokens, n_seqs_unq);
  for (std::uint32_t i = 0; i < n_tokens; ++i) {
    if (pos[i] != 0) continue;
    for (std::int32_t s = 0; s < n_seq_ids[i]; ++s) impl.session.begin_sequence(seq_ids[i][s]);
  }
  if (!impl.in_step) {
    impl.session.record_prefill(n_tokens);
    return;
  }
  auto const found = impl.graphs.find(graph);
  if (found == impl.graphs.end()) GGML_ABORT("skipllm: a decode graph was built without begin_graph()");
  impl.ffn_nodes = &found->second;
  impl.num_rows = static_cast<int>(n_tokens);
  for (std::uint32_t i = 0; i < n_tokens; ++i) {
    if (n_seq_ids[i] != 1) GGML_ABORT("skipllm: decode token %u belongs to %d sequences", i, n_seq_ids[i]);
    impl.slots[i] = seq_ids[i][0];
  }
  impl.session.begin_step(std::span<int const>(impl.slots.data(), n_tokens));
  impl.decide_layer(0);
}

void Client::end_ubatch() {
  if (!impl_->in_step) return;
  impl_->session.end_step();
  impl_->in_step = false;
}

}  // namespace skipllm_llama
