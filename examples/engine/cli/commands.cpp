#include "cli/commands.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <vector>

#include <skipllm/config.hpp>
#include <skipllm/json.hpp>
#include <skipllm/report.hpp>

#include "cli/calibrate_command.hpp"
#include "cli/eval_command.hpp"
#include "cli/summary_json.hpp"
#include "cli/support.hpp"
#include "cuda/cuda_generator.hpp"
#include "eval/heatmap.hpp"
#include "eval/timing.hpp"
#include "format/gguf.hpp"
#include "format/int8_dot.hpp"
#include "format/model_cache.hpp"
#include "format/policy_config.hpp"
#include "format/tokenizer.hpp"
#include "model/generator.hpp"
#include "model/llama_model.hpp"
#include "model/thread_pool.hpp"

namespace skipllm::cli {

namespace fs = std::filesystem;
namespace eng = skipllm::engine;

namespace {

using engine::eval::Clock;
using engine::eval::seconds_since;

std::string human_bytes(std::uint64_t n) {
  char buf[32];
  if (n >= 1'000'000'000ULL) {
    std::snprintf(buf, sizeof buf, "%.2f GB", static_cast<double>(n) / 1e9);
  } else if (n >= 1'000'000ULL) {
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(n) / 1e6);
  } else if (n >= 1'000ULL) {
    std::snprintf(buf, sizeof buf, "%.1f kB", static_cast<double>(n) / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  }
  return buf;
}

// ---- Prompt -----------------------------------------------------------------------------------

std::string read_prompt_file(std::string const& name) {
  std::string text;
  if (name == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::error_code ec;
    if (fs::is_directory(name, ec)) throw Failure{kExitUsage, "--prompt-file " + name + " is a directory"};
    std::ifstream in(name, std::ios::binary);
    if (!in) throw Failure{kExitUsage, "cannot read --prompt-file " + name + ": " + std::strerror(errno)};
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) throw Failure{kExitUsage, "cannot read --prompt-file " + name + ": " + std::strerror(errno)};
  }
  // An editor's final newline is not part of the prompt.
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  return text;
}

// ---- Outputs (--json/--trace/--heatmap open before the run via OutputFile: a bad path fails at once) ----

void write_json_optional_string(std::ostream& os, std::optional<std::string> const& s) {
  if (s) {
    skipllm::write_json_string(os, *s);
  } else {
    os << "null";
  }
}

void write_json_ids(std::ostream& os, std::span<std::int32_t const> ids) {
  os << '[';
  for (std::size_t i = 0; i < ids.size(); ++i) os << (i ? ", " : "") << ids[i];
  os << ']';
}

// ---- Commands -----------------------------------------------------------------------------------

// The options that describe the skip policy: giving any of them selects the paper's rule (with
// those values) instead of the default model's shipped config.
constexpr std::array<char const*, 8> kPolicyOptionNames = {"--threshold", "--span",          "--spans-per-token",
                                                           "--warmup",    "--refresh-every", "--cold-first",
                                                           "--cold-last", "--dense"};

// The shipped calibrated config of the default model, embedded at build time.
constexpr char const kDefaultPolicyConfig[] =
#include "default_policy_config.inc"
    ;

// The default model: SmolLM2-135M-Instruct Q4_1 by its file name and depth.
bool is_default_model(fs::path const& path, int layers) {
  return path.filename().string() == eng::kDefaultModelFile && layers == 30;
}

// The policy a generate run uses: its config (what the JSON summary reports), the library's
// policies built from it, where it came from (none: the options alone), and its description.
struct GeneratePolicy {
  eng::PolicyConfig config;
  skipllm::policy::ConfigurablePolicies policies;
  std::optional<std::string> source;
  std::string description;
};

// --config, else the default model's shipped calibrated config when nothing about the policy
// was asked for, else the options (the paper's rule).
GeneratePolicy choose_policy(GenerateOptions const& o, fs::path const& model_path, int num_layers) {
  GeneratePolicy p;
  try {
    p.config = policy_config(o, num_layers);
  } catch (UsageError const& e) { throw Failure{kExitUsage, e.what()}; }
  bool const policy_options_given = std::any_of(kPolicyOptionNames.begin(), kPolicyOptionNames.end(),
                                                [&](char const* n) { return o.given_options.count(n) > 0; });
  try {
    if (o.config) {
      p.config = eng::load_policy_config(*o.config);
      p.source = *o.config;
    } else if (!o.paper && !policy_options_given && is_default_model(model_path, num_layers)) {
      p.config = eng::parse_policy_config(kDefaultPolicyConfig, "shipped config smollm2-135m-instruct.json");
      p.source = "shipped default (examples/engine/configs/smollm2-135m-instruct.json)";
    }
    if (p.source) override_policy_config(p.config, o, o.given_options);
    p.policies = eng::make_policies(p.config, num_layers);
  } catch (eng::PolicyConfigError const& e) {
    throw Failure{kExitUsage, std::string(o.config ? "--config " + *o.config + ": " : "") + e.what()};
  }
  p.description = eng::describe_policies(p.policies, p.config.skip_attention);
  return p;
}

// The prompt as tokens: wrapped in the chat template unless --raw, after BOS when the model
// wants one. Warns when the model's template is not the ChatML that skipllm applies.
std::vector<std::int32_t> prompt_tokens(GenerateOptions const& o, std::string const& prompt,
                                        eng::Tokenizer const& tokenizer, eng::GgufFile const& file, std::ostream& err) {
  std::string formatted = prompt;
  if (!o.raw) {
    if (tokenizer.encode("<|im_start|>", true).size() != 1) {
      err << "skipllm: warning: the vocabulary has no <|im_start|> token, so the ChatML template is tokenized as "
             "plain text; consider --raw\n";
    } else if (!tokenizer.chat_template().empty() &&
               tokenizer.chat_template().find("<|im_start|>") == std::string::npos) {
      err << "skipllm: warning: the model's chat template is not ChatML; skipllm applies ChatML anyway (--raw to "
             "format the prompt yourself)\n";
    }
    std::vector<eng::ChatMessage> messages;
    if (o.system) messages.push_back({"system", *o.system});
    messages.push_back({"user", prompt});
    formatted = eng::apply_chat_template(messages, true);
  }
  std::vector<std::int32_t> ids;
  if (adds_bos_token(file) && tokenizer.bos_id() >= 0) ids.push_back(tokenizer.bos_id());
  std::vector<std::int32_t> const body = tokenizer.encode(formatted, true);
  ids.insert(ids.end(), body.begin(), body.end());
  if (ids.empty()) throw Failure{kExitUsage, "the prompt is empty"};
  return ids;
}

// The context limit: --ctx, at most the model's, and room for more than the prompt.
int context_limit(GenerateOptions const& o, std::size_t prompt_tokens, int model_context) {
  int const ctx = std::min(o.ctx, model_context);
  if (static_cast<std::int64_t>(prompt_tokens) >= ctx) {
    throw Failure{kExitUsage, "the prompt has " + std::to_string(prompt_tokens) + " tokens but the context holds " +
                                  std::to_string(ctx) + " (--ctx " + std::to_string(o.ctx) + ", model maximum " +
                                  std::to_string(model_context) + ")"};
  }
  return ctx;
}

// Sampling as the options ask; a sampling run without --seed draws one (and reports it).
eng::SamplingOptions sampling_options(GenerateOptions const& o, std::optional<std::uint64_t>& seed) {
  eng::SamplingOptions sampling;
  sampling.temperature = o.temperature;
  sampling.top_p = o.top_p;
  seed = o.seed;
  if (o.temperature > 0.0f && !seed)
    seed = (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  sampling.seed = seed.value_or(0);
  return sampling;
}

// Prefill (dense), then one decode step per generated token until an end-of-generation token,
// --max-tokens or a full KV cache. Streams the text to `stream` when given; fills the text,
// stop reason, counts and timings of `s`.
// Gen: eng::Generator (CPU) or eng::CudaGenerator (--device cuda): prefill, decode, position.
template <class Gen>
void generate_tokens(Gen& generator, eng::Tokenizer const& tokenizer, std::span<std::int32_t const> prompt,
                     eng::SamplingOptions const& sampling, int kv_tokens, std::ostream* stream, RunSummary& s) {
  s.prompt_ids.assign(prompt.begin(), prompt.end());
  Clock::time_point const prefill_start = Clock::now();
  std::span<float const> logits = generator.prefill(prompt);
  s.prefill_s = seconds_since(prefill_start);

  Clock::time_point const decode_start = Clock::now();
  std::mt19937_64 rng(sampling.seed);
  eng::Utf8StreamDecoder utf8;
  auto const emit = [&](std::string const& piece) {
    if (piece.empty()) return;
    s.text += piece;
    if (stream) *stream << piece << std::flush;
  };
  s.stop_reason = "max_tokens";
  for (;;) {
    std::int32_t const token = eng::sample(logits, sampling, rng);
    if (tokenizer.is_eog(token)) {
      s.stop_reason = "eos";
      break;
    }
    ++s.generated_tokens;
    s.generated_ids.push_back(token);
    emit(utf8.push(tokenizer.token_piece(token)));
    if (s.generated_tokens >= s.options.max_tokens) break;
    if (generator.position() >= kv_tokens) {
      s.stop_reason = "context_full";
      break;
    }
    logits = generator.decode(token);
    ++s.decode_steps;
  }
  emit(utf8.flush());
  s.decode_s = seconds_since(decode_start);
  if (stream && !s.text.empty() && s.text.back() != '\n') *stream << '\n' << std::flush;
}

// generate_tokens, except that NaN or Inf in a hidden state or the logits ends the run as
// "non_finite" with the error kept in `s`: the text so far, the statistics and the JSON summary
// are still written, and run_generate then fails.
template <class Gen>
void generate(Gen& generator, eng::Tokenizer const& tokenizer, std::span<std::int32_t const> prompt,
              eng::SamplingOptions const& sampling, int kv_tokens, std::ostream* stream, RunSummary& s) {
  try {
    generate_tokens(generator, tokenizer, prompt, sampling, kv_tokens, stream, s);
  } catch (eng::NonFiniteError const& e) {
    if (stream && !s.text.empty() && s.text.back() != '\n') *stream << '\n' << std::flush;
    s.stop_reason = "non_finite";
    s.error = e.what();
  }
}

// The statistics and throughput on stderr.
void print_generate_report(std::ostream& err, RunSummary const& s, skipllm::SkipStatistics const& stats) {
  err << "\n";
  skipllm::print_summary(err, stats, s.policy_description);
  if (s.policy_config) {
    err << "policy config: " << *s.policy_config << (s.options.config ? "" : " (--paper for the authors' settings)")
        << "\n";
  }
  double const prefill_tps = s.prefill_s > 0 ? static_cast<double>(s.prompt_tokens) / s.prefill_s : 0.0;
  double const decode_tps = s.decode_s > 0 ? static_cast<double>(s.decode_steps) / s.decode_s : 0.0;
  err << "prompt: " << s.prompt_tokens << " tokens, prefill " << fixed(s.prefill_s, 3) << " s ("
      << fixed(prefill_tps, 1) << " tok/s)\n"
      << "generated: " << s.generated_tokens << " tokens (stop: " << s.stop_reason << "), decode " << s.decode_steps
      << " steps in " << fixed(s.decode_s, 3) << " s (" << fixed(decode_tps, 1) << " tok/s)\n"
      << "model: " << s.model_path << " (" << s.layers << " layers, load " << fixed(s.load_s, 3)
      << " s), threads: " << s.threads << ", ctx: " << s.ctx;
  if (s.seed) err << ", seed: " << *s.seed;
  err << "\narithmetic: " << eng::precision_name(s.options.precision);
  if (s.options.precision == eng::ActivationPrecision::kInt8) err << " (" << s.int8_isa << " kernels)";
  err << ", KV cache " << eng::kv_cache_type_name(s.options.kv_cache) << " (" << human_bytes(s.kv_cache_bytes) << ")\n";
}

int run_generate(CommandLine const& cl, std::ostream& out, std::ostream& err) {
  GenerateOptions const& o = cl.generate;
  require_device(o.device);
  RunSummary s;
  s.command = std::string(command_name(cl.command));
  s.options = o;
  s.prompt = o.prompt ? *o.prompt : read_prompt_file(*o.prompt_file);
  s.chat_template = !o.raw;
  s.system = o.system;
  OutputFile json(o.json, "--json", out), trace_out(o.trace, "--trace", out), heatmap(o.heatmap, "--heatmap", out);

  fs::path const model_path = find_model(o.model, err);
  Clock::time_point const load_start = Clock::now();
  std::unique_ptr<LoadedModel> const loaded = load_model(model_path);
  eng::Tokenizer const tokenizer = load_tokenizer(*loaded);
  s.load_s = seconds_since(load_start);
  eng::LlamaConfig const& config = loaded->model.config();
  s.model_path = model_path.string();
  s.architecture = config.architecture;
  s.model_name = model_name(loaded->file);
  s.layers = config.n_layers;
  s.model_context = config.context_length;

  GeneratePolicy policy = choose_policy(o, model_path, config.n_layers);
  attach_standins(policy.config, o.config, loaded->model, policy.policies);
  policy.description = eng::describe_policies(policy.policies, policy.config.skip_attention);
  s.policy_description = policy.description;
  s.policy_config = policy.source;

  std::vector<std::int32_t> const ids = prompt_tokens(o, s.prompt, tokenizer, loaded->file, err);
  s.prompt_tokens = static_cast<std::int64_t>(ids.size());
  s.ctx = context_limit(o, ids.size(), config.context_length);
  // The KV cache needs no more than the prompt and the tokens we may generate.
  int const kv_tokens = static_cast<int>(std::min<std::int64_t>(s.ctx, s.prompt_tokens + o.max_tokens));
  eng::SamplingOptions const sampling = sampling_options(o, s.seed);

  for (auto const& w : cl.warnings) err << "skipllm: warning: " << w << "\n";

  eng::ThreadPool pool(o.device == "cuda" ? 1 : o.threads);
  s.threads = pool.size();
  bool const record_trace = static_cast<bool>(trace_out) || static_cast<bool>(heatmap);
  std::ostream* const stream = o.writes_stdout() ? nullptr : &out;
  std::optional<eng::Generator> cpu;
  std::optional<eng::CudaGenerator> cuda;
  if (o.device == "cuda") {
    if (policy.config.skip_attention) {
      throw Failure{kExitUsage, "--device cuda does not run the layer-skip baseline (skip_attention) yet"};
    }
    if (o.precision != eng::ActivationPrecision::kFloat32 || o.given_options.contains("--kv-cache")) {
      throw Failure{kExitUsage,
                    "--device cuda computes in fp32 with an fp32 KV cache: --precision and --kv-cache "
                    "apply to --device cpu only"};
    }
    s.options.kv_cache = eng::KvCacheType::kFloat32;
    // fp32 weights: the same dequantized values as the CPU engine, so the same greedy text.
    cuda.emplace(loaded->model, policy.policies, kv_tokens,
                 eng::CudaGeneratorOptions{.record_trace = record_trace, .weights = eng::DeviceWeights::kFloat32});
    s.kv_cache_bytes = cuda->kv_cache_bytes();
    generate(*cuda, tokenizer, ids, sampling, kv_tokens, stream, s);
  } else {
    cpu.emplace(loaded->model, pool, policy.policies, kv_tokens,
                eng::GeneratorOptions{.record_trace = record_trace,
                                      .skip_attention = policy.config.skip_attention,
                                      .precision = o.precision,
                                      .kv_cache = o.kv_cache});
    s.int8_isa = std::string(eng::isa_name(eng::int8_dot_isa()));
    s.kv_cache_bytes = cpu->host().kv_cache().bytes();
    if (record_trace) cpu->stack().trace().reserve(static_cast<std::size_t>(std::min(o.max_tokens, kv_tokens)));
    generate(*cpu, tokenizer, ids, sampling, kv_tokens, stream, s);
  }
  skipllm::SkipStatistics const& stats = cuda ? cuda->statistics() : cpu->stack().statistics();
  skipllm::DecisionTrace const& trace = cuda ? cuda->trace() : cpu->stack().trace();
  if (!o.quiet) print_generate_report(err, s, stats);
  if (json) {
    write_summary_json(json.stream(), s, policy.config, stats);
    json.finish();
  }
  if (trace_out) {
    skipllm::write_json(trace_out.stream(), stats, s.policy_description, &trace);
    trace_out.finish();
  }
  if (heatmap) {
    eng::HeatmapOptions h;
    h.subtitle = "model: " + model_path.filename().string() + "\npolicy: " + s.policy_description;
    eng::write_heatmap_svg(heatmap.stream(), trace, h);
    heatmap.finish();
  }
  if (s.error) throw Failure{kExitRuntime, *s.error};
  return kExitOk;
}

int run_info(InfoOptions const& o, std::ostream& out, std::ostream& err) {
  fs::path const path = find_model(o.model, err);
  std::unique_ptr<LoadedModel> const loaded = load_model(path);
  eng::GgufFile const& f = loaded->file;
  eng::LlamaModel const& m = loaded->model;
  eng::LlamaConfig const& c = m.config();

  auto const row = [&](char const* key, std::string const& value) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%-22s", key);
    out << buf << value << "\n";
  };
  row("file:", path.string());
  row("file size:", std::to_string(f.file_size()) + " bytes (" + human_bytes(f.file_size()) + "), GGUF v" +
                        std::to_string(f.version()));
  if (auto const name = model_name(f); !name.empty()) row("name:", name);
  row("architecture:", c.architecture);
  row("layers:", std::to_string(c.n_layers));
  row("embedding:", std::to_string(c.n_embd));
  row("feed-forward:", std::to_string(c.n_ff));
  row("attention heads:", std::to_string(c.n_heads) + " (kv heads " + std::to_string(c.n_kv_heads) + ", head dim " +
                              std::to_string(c.head_dim) + ")");
  row("vocabulary:", std::to_string(c.vocab));
  row("context length:", std::to_string(c.context_length));
  {
    std::ostringstream v;
    v << c.rope_base;
    row("rope base:", v.str());
    v.str("");
    v << c.rms_eps;
    row("rms norm eps:", v.str());
  }
  row("output head:", m.tied_embeddings() ? "tied to the token embedding" : "separate (output.weight)");
  try {
    eng::Tokenizer const t = eng::tokenizer_from_gguf(f);
    std::string chat = t.chat_template().empty()                                     ? "none"
                       : t.chat_template().find("<|im_start|>") != std::string::npos ? "ChatML"
                                                                                     : "present (not ChatML)";
    row("tokenizer:", "BPE, " + std::to_string(t.vocab_size()) + " tokens, chat template: " + chat);
  } catch (std::exception const& e) { row("tokenizer:", std::string("not supported (") + e.what() + ")"); }

  // Tensor types.
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> by_type;  // type -> (count, bytes)
  std::uint64_t total = 0;
  for (eng::TensorInfo const& t : f.tensors()) {
    auto& [count, bytes] = by_type[std::string(eng::type_name(t.type))];
    ++count;
    bytes += t.nbytes;
    total += t.nbytes;
  }
  row("tensors:",
      std::to_string(f.tensors().size()) + ", " + std::to_string(total) + " bytes (" + human_bytes(total) + ")");
  for (auto const& [type, cb] : by_type) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "  %-8s %5llu tensors %14llu bytes (%s)", type.c_str(),
                  static_cast<unsigned long long>(cb.first), static_cast<unsigned long long>(cb.second),
                  human_bytes(cb.second).c_str());
    out << buf << "\n";
  }

  // What a decode token reads, and the part FFN skipping can save.
  std::uint64_t attention = 0, ffn = 0;
  for (int l = 0; l < c.n_layers; ++l) {
    attention += m.layer(l).attention_bytes();
    ffn += m.layer(l).ffn_bytes();
  }
  std::uint64_t const per_token = m.bytes_per_token_dense();
  row("weights per token:",
      human_bytes(per_token) + " read per dense decode token: attention " + human_bytes(attention) + ", FFN " +
          human_bytes(ffn) + " (" +
          fixed(per_token ? 100.0 * static_cast<double>(ffn) / static_cast<double>(per_token) : 0, 1) +
          "%), output head " + human_bytes(m.output().bytes()));
  row("FFN per layer:", human_bytes(m.ffn_bytes_per_layer()) + " (saved by each skipped FFN block)");
  // The KV cache: 2 (K and V) x layers x kv heads x head dim x bytes per value, per token.
  std::size_t const kv16 = eng::kv_bytes_per_token(c, eng::KvCacheType::kFloat16);
  std::size_t const kv32 = eng::kv_bytes_per_token(c, eng::KvCacheType::kFloat32);
  auto const context = static_cast<std::uint64_t>(std::max(c.context_length, 0));
  row("KV cache per token:", human_bytes(kv16) + " fp16 (default), " + human_bytes(kv32) +
                                 " fp32 (--kv-cache fp32): 2 x " + std::to_string(c.n_layers) + " layers x " +
                                 std::to_string(c.n_kv_heads) + " kv heads x " + std::to_string(c.head_dim) +
                                 " dims x 2 or 4 bytes");
  row("KV cache at context:", human_bytes(kv16 * context) + " fp16, " + human_bytes(kv32 * context) + " fp32 for " +
                                  std::to_string(context) + " tokens (--ctx limits it)");
  row("int8 kernels:", std::string(eng::isa_name(eng::int8_dot_isa())) + " (--precision int8; " +
                           std::string(eng::dot_row_isa()) + " for --precision fp32)");
  int const cold = default_cold_layers(c.n_layers);
  row("default cold layers:", std::to_string(cold) + " first + " + std::to_string(cold) + " last (round(" +
                                  std::to_string(c.n_layers) + "/6)), " +
                                  std::to_string(std::max(c.n_layers - 2 * cold, 0)) + " layers may skip");

  if (o.tensors) {
    char head[160];
    std::snprintf(head, sizeof head, "\n%-28s %-6s %-16s %18s\n", "tensor", "type", "shape (ne0 x ne1)", "bytes");
    out << head;
    for (eng::TensorInfo const& t : f.tensors()) {
      std::string shape;
      for (int d = 0; d < t.n_dims; ++d) shape += (d ? " x " : "") + std::to_string(t.ne[static_cast<std::size_t>(d)]);
      char buf[160];
      std::snprintf(buf, sizeof buf, "%-28s %-6s %-16s %12llu bytes", t.name.c_str(),
                    std::string(eng::type_name(t.type)).c_str(), shape.c_str(),
                    static_cast<unsigned long long>(t.nbytes));
      out << buf << "\n";
    }
  }
  return kExitOk;
}

int run_fetch_model(FetchModelOptions const& o, std::ostream& out, std::ostream& err) {
  eng::ModelEnvironment const env = eng::ModelEnvironment::from_process();
  std::error_code ec;
  // Without -o, fetch-model prepares the model 'generate' uses without -m: $SKIPLLM_MODEL when
  // set (never downloaded or overwritten), else the cached default model.
  if (env.skipllm_model && !o.output) {
    fs::path const path(*env.skipllm_model);
    if (o.force) {
      throw Failure{kExitUsage, "SKIPLLM_MODEL is set (" + path.string() +
                                    "); fetch-model does not overwrite it: unset it, or pass -o PATH"};
    }
    if (!fs::is_regular_file(path, ec)) {
      throw Failure{kExitUsage, "SKIPLLM_MODEL=" + path.string() +
                                    " is not a file; unset SKIPLLM_MODEL to download the default model into the cache"};
    }
    err << "skipllm: SKIPLLM_MODEL is set: using " << path.string() << " (nothing downloaded)\n";
    out << path.string() << "\n";
    return kExitOk;
  }
  fs::path destination;
  try {
    destination = o.output ? fs::path(*o.output) : eng::default_model_cache_path(env);
  } catch (eng::ModelFetchError const& e) { throw Failure{kExitFetch, e.what()}; }
  if (fs::is_directory(destination, ec)) destination /= eng::kDefaultModelFile;
  if (fs::exists(destination, ec) && !o.force) {
    err << "skipllm: the default model is already there (--force downloads it again)\n";
  } else {
    eng::FetchOptions options;
    if (env.python) options.python = *env.python;
    try {
      eng::fetch_default_model(destination, options, err);
    } catch (eng::ModelFetchError const& e) { throw Failure{kExitFetch, e.what()}; }
  }
  out << destination.string() << "\n";
  return kExitOk;
}

}  // namespace

void write_summary_json(std::ostream& os, RunSummary const& s, engine::PolicyConfig const& p,
                        skipllm::SkipStatistics const& statistics) {
  using skipllm::write_json_number;
  using skipllm::write_json_string;
  GenerateOptions const& o = s.options;
  auto const rate = [](double n, double seconds) {
    return seconds > 0 && n > 0 ? n / seconds : std::numeric_limits<double>::quiet_NaN();
  };

  os << "{\n  \"schema\": \"skipllm.cli/1\",\n  \"skipllm_version\": ";
  write_json_string(os, version_string());
  os << ",\n  \"command\": ";
  write_json_string(os, s.command);
  os << ",\n  \"model\": {\"path\": ";
  write_json_string(os, s.model_path);
  os << ", \"name\": ";
  write_json_string(os, s.model_name);
  os << ", \"architecture\": ";
  write_json_string(os, s.architecture);
  os << ", \"layers\": " << s.layers << ", \"context_length\": " << s.model_context << "},\n  \"prompt\": {\"text\": ";
  write_json_string(os, s.prompt);
  os << ", \"chat_template\": " << (s.chat_template ? "true" : "false") << ", \"system\": ";
  write_json_optional_string(os, s.system);
  os << "},\n  \"text\": ";
  write_json_string(os, s.text);
  os << ",\n  \"stop_reason\": ";
  write_json_string(os, s.stop_reason);
  os << ",\n  \"error\": ";
  write_json_optional_string(os, s.error);
  os << ",\n  \"tokens\": {\"prompt\": " << s.prompt_tokens << ", \"generated\": " << s.generated_tokens
     << ", \"decode_steps\": " << s.decode_steps << "},\n  \"token_ids\": {\"prompt\": ";
  write_json_ids(os, s.prompt_ids);
  os << ", \"generated\": ";
  write_json_ids(os, s.generated_ids);
  os << "},\n  \"timings_s\": {\"load\": ";
  write_json_number(os, s.load_s);
  os << ", \"prefill\": ";
  write_json_number(os, s.prefill_s);
  os << ", \"decode\": ";
  write_json_number(os, s.decode_s);
  os << "},\n  \"tokens_per_s\": {\"prefill\": ";
  write_json_number(os, rate(static_cast<double>(s.prompt_tokens), s.prefill_s));
  os << ", \"decode\": ";
  write_json_number(os, rate(static_cast<double>(s.decode_steps), s.decode_s));
  os << "},\n  \"sampling\": {\"greedy\": " << (o.temperature > 0 ? "false" : "true") << ", \"temperature\": ";
  write_json_float(os, o.temperature);
  os << ", \"top_p\": ";
  write_json_float(os, o.top_p);
  os << ", \"seed\": ";
  if (s.seed)
    os << *s.seed;
  else
    os << "null";
  os << "},\n  \"runtime\": {\"max_tokens\": " << o.max_tokens << ", \"ctx\": " << s.ctx
     << ", \"threads\": " << s.threads << ", \"precision\": ";
  write_json_string(os, std::string(eng::precision_name(o.precision)));
  os << ", \"int8_isa\": ";
  if (o.precision == eng::ActivationPrecision::kInt8)
    write_json_string(os, s.int8_isa);
  else
    os << "null";
  os << ", \"kv_cache\": ";
  write_json_string(os, std::string(eng::kv_cache_type_name(o.kv_cache)));
  os << ", \"kv_cache_bytes\": " << s.kv_cache_bytes << "},\n  \"policy\": {\"description\": ";
  write_json_string(os, s.policy_description);
  os << ", \"config\": ";
  write_json_optional_string(os, s.policy_config);
  os << ", \"dense\": " << (o.dense ? "true" : "false") << ", \"threshold\": ";
  write_json_float(os, p.threshold);
  os << ", \"span\": ";
  if (p.span >= skipllm::policy::kToColdRegion)
    os << "\"all\"";
  else
    os << p.span;
  os << ", \"spans_per_token\": " << p.spans_per_token << ", \"warmup_tokens\": " << p.warmup_tokens
     << ", \"refresh_every\": " << p.warmup_every << ", \"cold_first\": " << p.cold_first
     << ", \"cold_last\": " << p.cold_last << ", \"metric\": \"Cosine\"},\n  \"statistics\": ";
  write_nested_statistics_json(os, statistics, s.policy_description);
  os << "\n}\n";
}

int run(CommandLine const& cl, std::ostream& out, std::ostream& err) {
  try {
    switch (cl.command) {
      case Command::help: out << help_text(cl.help_for); return kExitOk;
      case Command::version: out << "skipllm " << version_string() << "\n"; return kExitOk;
      case Command::generate:
      case Command::chat: return run_generate(cl, out, err);
      case Command::info: return run_info(cl.info, out, err);
      case Command::fetch_model: return run_fetch_model(cl.fetch_model, out, err);
      case Command::calibrate: return run_calibrate(*cl.calibrate, out, err);
      case Command::eval: return run_eval(*cl.eval, out, err);
    }
  } catch (Failure const& f) {
    out.flush();
    err << "skipllm: error: " << f.message << "\n";
    return f.status;
  } catch (std::exception const& e) {
    out.flush();
    err << "skipllm: error: " << e.what() << "\n";
    return kExitRuntime;
  }
  return kExitRuntime;
}

}  // namespace skipllm::cli
