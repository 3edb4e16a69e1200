// skipllm inside llama.cpp: the decision protocol driven from ggml custom ops (C++20).
//
// llama.cpp builds one graph per ubatch and reuses it across decode steps, so the FFN of a
// layer cannot be left out of the graph once the previous layer's score is known. Instead the
// FFN of a skippable layer is a chain of custom ops that look up the decision made inside the
// graph, one node earlier:
//
//   ffn_inp -> [FFN norm] -> gate_up (custom) -> swiglu (ggml) -> down (custom) -> residual (custom)
//
// gate_up and down read their weights only for the rows whose FFN runs (none: the node does
// nothing), with ggml's own per-type quantization and dot products, so a row that runs gets
// the bits ggml's matrix-vector product gives. The residual node adds the FFN output for those
// rows, measures the similarity in the same pass (skipllm::cpu::residual_add_similarity),
// feeds it to the row's skip state and decides the next layer. Every decode graph layer but
// the last ends in a residual node, cold ones included (their FFN is llama.cpp's own), since
// a cold layer's score feeds the decision of the layer after it. The SkipSession keeps the
// per-sequence state, statistics and trace, exactly as in skipllm's own engine.
#include "skipllm_llama.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <ggml-backend.h>
#include <ggml-cpu.h>
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

// ggml has no public "plain row layout" query; the CPU backend's extra buffer types (repack,
// AMX, ...) store weights in their own layouts, the plain ones are these two.
bool plain_cpu_weights(ggml_tensor const* w) {
  if (w->buffer == nullptr || !ggml_backend_buffer_is_host(w->buffer)) return false;
  std::string const name = ggml_backend_buft_name(ggml_backend_buffer_get_type(w->buffer));
  return name == "CPU" || name == "CPU_Mapped";
}

// out[r][i] = W[i] . x[r] for output rows i in [first, last) and the given rows r, through
// ggml's vec_dot on x quantized to the weight's vec_dot_type, as ggml's mul_mat does.
void matvec(ggml_tensor const* w, ggml_tensor const* x, std::span<int const> rows, char* out, std::size_t out_stride,
            std::int64_t first, std::int64_t last) {
  if (first >= last || rows.empty()) return;
  ggml_type_traits_cpu const* traits = ggml_get_type_traits_cpu(w->type);
  ggml_type const dot_type = traits->vec_dot_type;
  std::int64_t const n = w->ne[0];
  std::size_t const row_size = ggml_row_size(dot_type, n);
  // Each thread quantizes the few rows it needs itself: no extra node and barrier, and the
  // buffer grows once per thread, not per step.
  thread_local std::vector<char> quantized;
  if (dot_type != GGML_TYPE_F32 && quantized.size() < row_size * rows.size()) quantized.resize(row_size * rows.size());
  thread_local std::vector<void const*> operands;
  operands.resize(rows.size());
  for (std::size_t k = 0; k < rows.size(); ++k) {
    auto const* xr = reinterpret_cast<float const*>(static_cast<char const*>(x->data) + rows[k] * x->nb[1]);
    if (dot_type == GGML_TYPE_F32) {
      operands[k] = xr;
    } else {
      ggml_get_type_traits_cpu(dot_type)->from_float(xr, quantized.data() + k * row_size, n);
      operands[k] = quantized.data() + k * row_size;
    }
  }
  for (std::int64_t i = first; i < last; ++i) {
    char const* const wrow = static_cast<char const*>(w->data) + i * w->nb[1];
    for (std::size_t k = 0; k < rows.size(); ++k) {
      float* const dst = reinterpret_cast<float*>(out + static_cast<std::size_t>(rows[k]) * out_stride) + i;
      traits->vec_dot(static_cast<int>(n), dst, 0, wrow, 0, operands[k], 0, 1);
    }
  }
}

// This thread's share [first, last) of `total` output rows.
std::pair<std::int64_t, std::int64_t> share(std::int64_t total, int ith, int nth) {
  return {total * ith / nth, total * (ith + 1) / nth};
}

}  // namespace

struct Client::Impl {
  // What a custom op needs: its layer and the client (the op's userdata; addresses stable).
  struct LayerOp {
    Impl* impl;
    int layer;
  };

  Impl(Policies const& p, std::string path, int layers, int max_sequences)
      : policies(p),
        policy_path(std::move(path)),
        num_layers(layers),
        session(p, layers, {.max_sequences = max_sequences, .record_trace = env("SKIPLLM_TRACE") != nullptr}),
        run_rows(static_cast<std::size_t>(layers)),
        slots(static_cast<std::size_t>(max_sequences)) {
    for (int l = 0; l < layers; ++l) {
      ops.push_back({this, l});
      run_rows[static_cast<std::size_t>(l)].reserve(static_cast<std::size_t>(max_sequences));
    }
  }

  ~Impl() { report(); }

  // Decides `layer` for every row of the step; the rows whose FFN runs are what its custom
  // ops and its residual node work on.
  void decide_layer(int layer) {
    auto& rows = run_rows[static_cast<std::size_t>(layer)];
    rows.clear();
    for (int r = 0; r < num_rows; ++r) {
      if (skipllm::runs_ffn(session.decide(layer, r))) rows.push_back(r);
    }
  }

  std::span<int const> rows_that_run(int layer) const { return run_rows[static_cast<std::size_t>(layer)]; }

  void report() {
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

  Policies policies;
  std::string policy_path;
  int num_layers;
  skipllm::SkipSession<Policies> session;
  std::vector<LayerOp> ops;                // [num_layers]
  std::vector<std::vector<int>> run_rows;  // [num_layers]: rows of the step whose FFN runs
  std::vector<int> slots;                  // [rows of the step]: each row's sequence id
  int num_rows = 0;
  bool in_step = false;
};

namespace {

Client::Impl::LayerOp const& layer_op(void* userdata) { return *static_cast<Client::Impl::LayerOp const*>(userdata); }

// dst [n_ff, rows, 2]: gate in plane 0, up in plane 1; src: normed x, W_gate, W_up.
void gate_up_op(ggml_tensor* dst, int ith, int nth, void* userdata) {
  auto const& op = layer_op(userdata);
  auto const rows = op.impl->rows_that_run(op.layer);
  ggml_tensor const* x = dst->src[0];
  std::int64_t const n_ff = dst->ne[0];
  auto const [first, last] = share(2 * n_ff, ith, nth);
  char* const out = static_cast<char*>(dst->data);
  matvec(dst->src[1], x, rows, out, dst->nb[1], first, std::min(last, n_ff));
  matvec(dst->src[2], x, rows, out + dst->nb[2], dst->nb[1], std::max(first, n_ff) - n_ff, last - n_ff);
}

// dst [n_embd, rows]; src: the SwiGLU activations, W_down.
void down_op(ggml_tensor* dst, int ith, int nth, void* userdata) {
  auto const& op = layer_op(userdata);
  auto const [first, last] = share(dst->ne[0], ith, nth);
  matvec(dst->src[1], dst->src[0], op.impl->rows_that_run(op.layer), static_cast<char*>(dst->data), dst->nb[1], first,
         last);
}

// dst [n_embd, rows] = ffn_inp (+ ffn_out where the FFN ran, scored); then the next decisions.
// One task: a few vectors of adds, and the decisions must be made once. The CPU backend calls a
// custom op on every thread whatever its n_tasks (ggml_graph_compute_thread runs each node on
// all threads; n_tasks only sizes the plan), so all threads but the first return at once:
// otherwise they add the FFN output into rows another thread is copying, observe scores twice
// and rebuild the next layer's row list concurrently.
void residual_op(ggml_tensor* dst, int ith, int, void* userdata) {
  if (ith != 0) return;
  auto const& op = layer_op(userdata);
  Client::Impl& impl = *op.impl;
  ggml_tensor const* f = dst->src[0];
  ggml_tensor const* h = dst->src[1];
  std::int64_t const n = h->ne[0];
  if (h->ne[1] != impl.num_rows)
    GGML_ABORT("skipllm: layer %d has %lld rows, the step %d", op.layer, (long long)h->ne[1], impl.num_rows);
  for (int r = 0; r < impl.num_rows; ++r) {
    std::memcpy(static_cast<char*>(dst->data) + r * dst->nb[1], static_cast<char const*>(h->data) + r * h->nb[1],
                static_cast<std::size_t>(n) * sizeof(float));
  }
  for (int const r : impl.rows_that_run(op.layer)) {
    auto* const x = reinterpret_cast<float*>(static_cast<char*>(dst->data) + r * dst->nb[1]);
    auto const* const fr = reinterpret_cast<float const*>(static_cast<char const*>(f->data) + r * f->nb[1]);
    impl.session.observe(op.layer, r, skipllm::cpu::residual_add_similarity<Policies::metric>(x, fr, n));
  }
  if (op.layer + 1 < impl.num_layers) impl.decide_layer(op.layer + 1);
}

}  // namespace

bool ffn_in_custom_ops(int layer, int num_layers) {
  char const* path = env("SKIPLLM_POLICY");
  if (path == nullptr) return false;
  // Asked once per weight at model load: parse the file once per (file, depth).
  static std::mutex mutex;
  static std::optional<std::pair<std::string, std::vector<bool>>> cached;
  std::lock_guard lock(mutex);
  if (!cached || cached->first != path || cached->second.size() != static_cast<std::size_t>(num_layers)) {
    Policies const policies = load_policies(path, num_layers);
    std::vector<bool> custom(static_cast<std::size_t>(num_layers));
    for (int l = 0; l < num_layers; ++l) custom[static_cast<std::size_t>(l)] = skippable(policies, l, num_layers);
    cached.emplace(path, std::move(custom));
  }
  return cached->second[static_cast<std::size_t>(layer)];
}

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

ggml_tensor* Client::build_ffn(ggml_context* ctx, int layer, ggml_tensor* normed, ggml_tensor* up, ggml_tensor* gate,
                               ggml_tensor* down) {
  for (ggml_tensor const* w : {up, gate, down}) {
    if (!plain_cpu_weights(w)) {
      GGML_ABORT("skipllm: %s is not in a plain CPU buffer; FFN skipping in llama.cpp runs on the CPU backend only",
                 w->name);
    }
  }
  std::int64_t const n_ff = gate->ne[1];
  std::int64_t const rows = normed->ne[1];
  void* const userdata = &impl_->ops[static_cast<std::size_t>(layer)];
  ggml_tensor* gate_up_args[] = {normed, gate, up};
  ggml_tensor* gate_up =
      ggml_custom_4d(ctx, GGML_TYPE_F32, n_ff, rows, 2, 1, gate_up_args, 3, gate_up_op, GGML_N_TASKS_MAX, userdata);
  ggml_tensor* g = ggml_view_2d(ctx, gate_up, n_ff, rows, gate_up->nb[1], 0);
  ggml_tensor* u = ggml_view_2d(ctx, gate_up, n_ff, rows, gate_up->nb[1], gate_up->nb[2]);
  ggml_tensor* down_args[] = {ggml_swiglu_split(ctx, g, u), down};
  return ggml_custom_4d(ctx, GGML_TYPE_F32, down->ne[1], rows, 1, 1, down_args, 2, down_op, GGML_N_TASKS_MAX, userdata);
}

ggml_tensor* Client::build_residual(ggml_context* ctx, int layer, ggml_tensor* ffn_out, ggml_tensor* ffn_inp) {
  ggml_tensor* args[] = {ffn_out, ffn_inp};
  return ggml_custom_4d(ctx, GGML_TYPE_F32, ffn_inp->ne[0], ffn_inp->ne[1], 1, 1, args, 2, residual_op, 1,
                        &impl_->ops[static_cast<std::size_t>(layer)]);
}

void Client::begin_ubatch(std::uint32_t n_tokens, std::uint32_t n_seqs_unq, std::int32_t const* const* seq_ids,
                          std::int32_t const* n_seq_ids, std::int32_t const* pos) {
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
