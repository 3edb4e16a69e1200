// CPU decode benchmark: what FFN skipping buys in decode time on the reference engine, measured
// side by side in one run against the machine's read bandwidth.
//
//   cpu_decode [-m MODEL] [-t THREADS] [-n TOKENS] [--rounds R] [--precision P] [--out DIR]
//              [--phases LIST] [--skip-ratios LIST] [--batches LIST] [--config FILE]
//              [--memory-context N] [--memory-fill N] [--threshold TAU]
//
// Phases (--phases, default all, each printing its progress to stderr):
//   memory     peak resident memory with a KV cache of --memory-context tokens allocated, after
//              prefilling --memory-fill of them (cheap on a 7B model; the KV bytes of the full
//              context are computed and stated beside it)
//   bandwidth  the machine's streaming read bandwidth (the roofline of decode)
//   policy     dense vs the real skip policy (--config, else the shipped config when the model is
//              the default one, else the greedy rule at --threshold), interleaved rounds
//   forced     static-mask skipping of 0, 10, 20, 30% of the FFN blocks (--skip-ratios), chosen
//              outside the cold layers, against the byte-ideal speedup from the tensor sizes
//   batch      1, 2, 4, 8 concurrent sequences (--batches), dense and with the real policy:
//              tokens/s and the FFN weight reads avoided (a matrix is read once per step if any
//              row of the step runs it)
//
// Reported as ratios, because shared machines are noisy: every round runs each variant once, in
// the same order, and the medians of per-round ratios are reported.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <skipllm/policy/describe.hpp>

#include "eval/timing.hpp"
#include "format/model_cache.hpp"
#include "format/policy_config.hpp"
#include "format/tokenizer.hpp"
#include "model/generator.hpp"

namespace engine = skipllm::engine;
namespace policy = skipllm::policy;
using skipllm::engine::eval::Clock;
using skipllm::engine::eval::seconds_since;

namespace {

// ---------------------------------------------------------------- options

struct Options {
  std::string model;
  int threads = 0;
  int tokens = 64;
  int rounds = 3;
  float threshold = 0.95f;
  engine::ActivationPrecision precision = engine::ActivationPrecision::kInt8;
  engine::KvCacheType kv_cache = engine::KvCacheType::kFloat16;
  std::string out_dir;
  std::string config;
  std::vector<std::string> phases{"memory", "bandwidth", "policy", "forced", "batch"};
  std::vector<int> skip_percents{0, 10, 20, 30};
  std::vector<int> batches{1, 2, 4, 8};
  int memory_context = 4096;
  int memory_fill = 64;

  bool runs(std::string const& phase) const { return std::find(phases.begin(), phases.end(), phase) != phases.end(); }
};

std::vector<std::string> split(std::string const& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::vector<int> int_list(std::string const& s, char const* option, int lo, int hi) {
  std::vector<int> out;
  for (auto const& item : split(s)) {
    int const v = std::stoi(item);
    if (v < lo || v > hi)
      throw std::invalid_argument(std::string(option) + " values must be in [" + std::to_string(lo) + ", " +
                                  std::to_string(hi) + "]");
    out.push_back(v);
  }
  if (out.empty()) throw std::invalid_argument(std::string(option) + " needs at least one value");
  return out;
}

char const* kUsage =
    "usage: cpu_decode [-m MODEL] [-t THREADS] [-n TOKENS] [--rounds R] [--precision int8|fp32]\n"
    "                  [--kv-cache fp16|fp32]\n"
    "                  [--phases memory,bandwidth,policy,forced,batch] [--skip-ratios 0,10,20,30]\n"
    "                  [--batches 1,2,4,8] [--config FILE] [--memory-context N] [--memory-fill N]\n"
    "                  [--threshold TAU] [--out DIR]\n";

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string const a = argv[i];
    auto value = [&] {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return std::string(argv[++i]);
    };
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      std::exit(0);
    } else if (a == "-m" || a == "--model") {
      o.model = value();
    } else if (a == "-t" || a == "--threads") {
      o.threads = std::stoi(value());
    } else if (a == "-n" || a == "--tokens") {
      o.tokens = std::stoi(value());
    } else if (a == "--rounds") {
      o.rounds = std::stoi(value());
    } else if (a == "--threshold") {
      o.threshold = std::stof(value());
    } else if (a == "--out") {
      o.out_dir = value();
    } else if (a == "--config") {
      o.config = value();
    } else if (a == "--phases") {
      o.phases = split(value());
      for (auto const& p : o.phases) {
        if (p != "memory" && p != "bandwidth" && p != "policy" && p != "forced" && p != "batch")
          throw std::invalid_argument("unknown phase " + p);
      }
    } else if (a == "--skip-ratios") {
      o.skip_percents = int_list(value(), "--skip-ratios", 0, 90);
    } else if (a == "--batches") {
      o.batches = int_list(value(), "--batches", 1, 64);
    } else if (a == "--memory-context") {
      o.memory_context = std::stoi(value());
    } else if (a == "--memory-fill") {
      o.memory_fill = std::stoi(value());
    } else if (a == "--kv-cache") {
      std::string const k = value();
      if (k != "fp16" && k != "fp32") throw std::invalid_argument("--kv-cache is fp16 or fp32");
      o.kv_cache = k == "fp16" ? engine::KvCacheType::kFloat16 : engine::KvCacheType::kFloat32;
    } else if (a == "--precision") {
      std::string const p = value();
      if (p != "int8" && p != "fp32") throw std::invalid_argument("--precision is int8 or fp32");
      o.precision = p == "int8" ? engine::ActivationPrecision::kInt8 : engine::ActivationPrecision::kFloat32;
    } else {
      throw std::invalid_argument("unknown option " + a + "\n" + kUsage);
    }
  }
  if (o.tokens < 4 || o.tokens > 1500) throw std::invalid_argument("--tokens must be in [4, 1500]");
  if (o.rounds < 1) throw std::invalid_argument("--rounds must be >= 1");
  if (o.memory_context < 16) throw std::invalid_argument("--memory-context must be >= 16");
  if (o.memory_fill < 1 || o.memory_fill >= o.memory_context)
    throw std::invalid_argument("--memory-fill must be in [1, --memory-context)");
  return o;
}

// ---------------------------------------------------------------- measurement helpers

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t const n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// (max - min) / median: the run-to-run spread of a set of rounds.
double spread(std::vector<double> const& v) {
  auto const [lo, hi] = std::minmax_element(v.begin(), v.end());
  return (*hi - *lo) / median(v);
}

// Read bandwidth: every thread sums its share of a buffer far larger than the caches; best of
// several passes. Decode is a read-only stream over the weights, so this is its roofline.
double measure_read_bandwidth(int threads) {
  std::size_t const bytes = std::size_t{1} << 30;
  std::vector<std::uint64_t> buf(bytes / sizeof(std::uint64_t));
  for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = i;
  double best = 0;
  for (int pass = 0; pass < 5; ++pass) {
    std::atomic<std::uint64_t> sink{0};
    auto const start = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        std::size_t const begin = buf.size() * t / threads, end = buf.size() * (t + 1) / threads;
        std::uint64_t lanes[8] = {};
        for (std::size_t i = begin; i + 8 <= end; i += 8)
          for (int j = 0; j < 8; ++j) lanes[j] += buf[i + j];
        sink += std::accumulate(lanes, lanes + 8, std::uint64_t{0});
      });
    }
    for (auto& th : pool) th.join();
    best = std::max(best, static_cast<double>(bytes) / seconds_since(start));
    if (sink.load() == 42) std::cerr << "";  // keep the sums alive
  }
  return best;
}

long status_kib(char const* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field, 0) == 0) return std::strtol(line.c_str() + std::strlen(field), nullptr, 10);
  }
  return -1;
}

std::string shell_line(char const* cmd) {
  std::string out;
  if (FILE* p = popen(cmd, "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// A line on stderr at most every two seconds while a loop runs, so a 7B model never goes quiet.
class Progress {
 public:
  Progress(std::string what, int total) : what_(std::move(what)), total_(total), start_(Clock::now()) {}
  void tick(int done) {
    double const t = seconds_since(start_);
    if (t - last_ < 2.0 && done < total_) return;
    last_ = t;
    std::fprintf(stderr, "    %s: %d/%d (%.1f s)\n", what_.c_str(), done, total_, t);
  }

 private:
  std::string what_;
  int total_;
  Clock::time_point start_;
  double last_ = 0;
};

// ---------------------------------------------------------------- decode runs

struct DecodeRun {
  double tokens_per_second = 0;
  double skipped_per_token = 0;  // FFN blocks
  double skip_ratio = 0;
};

// One sequence: prefill `prompt`, decode the policy's warm-up tokens, then `tokens` greedy tokens
// (timed, and the only ones counted in the statistics; EOG does not stop).
DecodeRun decode(engine::LlamaModel const& model, engine::ThreadPool& pool,
                 policy::ConfigurablePolicies const& policies, std::vector<std::int32_t> const& prompt, int tokens,
                 Options const& opt, std::string const& label) {
  int const warmup = policies.warmup.tokens;
  int const context = static_cast<int>(prompt.size()) + warmup + tokens + 1;
  engine::Generator gen(model, pool, policies, context, {.precision = opt.precision, .kv_cache = opt.kv_cache});
  auto logits = gen.prefill(prompt);
  std::mt19937_64 rng(0);
  for (int i = 0; i < warmup; ++i) logits = gen.decode(engine::sample(logits, {}, rng));
  gen.stack().reset_statistics();
  Progress progress(label, tokens);
  auto const start = Clock::now();
  for (int i = 0; i < tokens; ++i) {
    logits = gen.decode(engine::sample(logits, {}, rng));
    progress.tick(i + 1);
  }
  double const elapsed = seconds_since(start);
  auto const& st = gen.stack().statistics();
  return {tokens / elapsed, static_cast<double>(st.skipped_blocks()) / tokens, st.skip_ratio()};
}

// Several sequences decoded together through one DecoderStack: one step carries one row per
// sequence, so a layer's FFN weights are read once per step if any row runs them.
struct BatchRun {
  double tokens_per_second = 0;  // all sequences together
  double skip_ratio = 0;         // skipped FFN blocks / (rows x layers)
  double reads_avoided = 0;      // FFN matrices not read / (steps x layers)
};

BatchRun decode_batch(engine::LlamaModel const& model, engine::ThreadPool& pool,
                      policy::ConfigurablePolicies const& policies,
                      std::vector<std::vector<std::int32_t>> const& prompts, int tokens, Options const& opt,
                      std::string const& label) {
  int const batch = static_cast<int>(prompts.size());
  int const warmup = policies.warmup.tokens;  // the policy's dense tokens run untimed
  std::size_t longest = 0;
  for (auto const& p : prompts) longest = std::max(longest, p.size());
  int const context = static_cast<int>(longest) + warmup + tokens + 1;
  engine::LlamaHost host(model, pool, batch, context, opt.precision, opt.kv_cache);
  engine::EngineStack stack(host, policies, {.max_sequences = batch, .record_trace = true});
  int const vocab = model.config().vocab;

  std::vector<int> slots(static_cast<std::size_t>(batch)), positions(slots.size());
  std::vector<std::int32_t> next(slots.size());
  std::vector<float> logits(static_cast<std::size_t>(vocab));
  auto const argmax = [&](engine::LlamaHost::Step& step, int row) {
    host.logits(step, row, logits);
    return static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  };
  // Prefill each sequence alone (dense), in its own slot.
  for (int s = 0; s < batch; ++s) {
    auto const& p = prompts[static_cast<std::size_t>(s)];
    engine::LlamaHost::Step step = host.make_step(static_cast<int>(p.size()));
    std::vector<int> pos(p.size()), slot(p.size(), s);
    std::iota(pos.begin(), pos.end(), 0);
    stack.begin_sequence(s);
    host.set_tokens(step, p, pos, slot);
    stack.prefill(step);
    slots[static_cast<std::size_t>(s)] = s;
    positions[static_cast<std::size_t>(s)] = static_cast<int>(p.size());
    next[static_cast<std::size_t>(s)] = argmax(step, step.rows - 1);
  }
  engine::LlamaHost::Step step = host.make_step(batch);
  auto const one_step = [&] {
    host.set_tokens(step, next, positions, slots);
    stack.decode(step, slots);
    for (int r = 0; r < batch; ++r) {
      next[static_cast<std::size_t>(r)] = argmax(step, r);
      ++positions[static_cast<std::size_t>(r)];
    }
  };
  for (int i = 0; i < warmup; ++i) one_step();
  stack.reset_statistics();
  Progress progress(label, tokens);
  auto const start = Clock::now();
  for (int i = 0; i < tokens; ++i) {
    one_step();
    progress.tick(i + 1);
  }
  double const elapsed = seconds_since(start);

  // The trace holds one record per row, a step's rows together and in row order.
  skipllm::DecisionTrace const& trace = stack.trace();
  int const layers = stack.num_layers();
  std::size_t reads = 0;
  for (std::size_t first = 0; first + static_cast<std::size_t>(batch) <= trace.size(); first += batch) {
    for (int l = 0; l < layers; ++l) {
      bool any_runs = false;
      for (int r = 0; r < batch; ++r)
        any_runs = any_runs || trace.decisions(first + static_cast<std::size_t>(r))[static_cast<std::size_t>(l)] !=
                                   skipllm::FfnDecision::kSkip;
      reads += any_runs;
    }
  }
  double const cells = static_cast<double>(tokens) * layers;
  return {static_cast<double>(batch) * tokens / elapsed, stack.statistics().skip_ratio(), 1.0 - reads / cells};
}

// ---------------------------------------------------------------- policies

// Skips the FFN of `count` layers in every token, spread evenly over the layers outside the
// `cold` first and last ones; no warm-up, no cold region (the mask already avoids them).
policy::ConfigurablePolicies forced_skip(int layers, int cold, int count, std::vector<int>& chosen) {
  std::vector<int> eligible;
  for (int l = cold; l < layers - cold; ++l) eligible.push_back(l);
  if (count > static_cast<int>(eligible.size()))
    throw std::invalid_argument("cannot skip " + std::to_string(count) + " of " + std::to_string(eligible.size()) +
                                " non-cold layers");
  policy::StaticMask mask;
  chosen.clear();
  for (int i = 0; i < count; ++i) {
    int const l = eligible[static_cast<std::size_t>((2 * i + 1) * eligible.size() / (2 * count))];
    mask.layers.insert(l);
    chosen.push_back(l);
  }
  return {mask, {0, 0}, {0, 0}};
}

struct RealPolicy {
  policy::ConfigurablePolicies policies;
  std::string source;
};

// --config, else the shipped config when it fits the model (the default model), else the greedy
// rule at --threshold with the paper's cold regions and warm-up.
RealPolicy real_policy(Options const& o, int layers) {
  if (!o.config.empty()) { return {engine::make_policies(engine::load_policy_config(o.config), layers), o.config}; }
#ifdef SKIPLLM_SHIPPED_CONFIG
  auto const shipped = engine::load_policy_config(SKIPLLM_SHIPPED_CONFIG);
  if (shipped.model_layers == layers) return {engine::make_policies(shipped, layers), "shipped config"};
#endif
  int const cold = (layers + 3) / 6;
  return {{policy::Greedy{o.threshold, 8, 1}, {cold, cold}, {16, 6}}, "greedy rule"};
}

// ---------------------------------------------------------------- report

class Report {
 public:
  void heading(std::string const& title) { md_ << "\n## " << title << "\n\n"; }
  void text(std::string const& line) { md_ << line << "\n"; }
  void row(std::vector<std::string> const& cells) {
    md_ << "|";
    for (auto const& c : cells) md_ << " " << c << " |";
    md_ << "\n";
  }
  void table(std::vector<std::string> const& header) {
    row(header);
    md_ << "|";
    for (std::size_t i = 0; i < header.size(); ++i) md_ << "---|";
    md_ << "\n";
  }
  std::string str() const { return md_.str(); }

 private:
  std::ostringstream md_;
};

std::string fmt(char const* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) try {
  Options const opt = parse(argc, argv);
  std::optional<std::string> const explicit_model = opt.model.empty() ? std::nullopt : std::optional(opt.model);
  std::string const model_path =
      engine::resolve_model(explicit_model, engine::ModelEnvironment::from_process(), std::cerr).string();
  int const threads =
      opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string const precision_name(engine::precision_name(opt.precision));

  std::cerr << "[load] " << model_path << "\n";
  auto const load_start = Clock::now();
  auto const file = engine::GgufFile::open(model_path);
  engine::LlamaModel const model(file);
  engine::Tokenizer const tokenizer = engine::tokenizer_from_gguf(file);
  double const load_s = seconds_since(load_start);
  engine::ThreadPool pool(threads);
  auto const& cfg = model.config();
  int const cold = (cfg.n_layers + 3) / 6;

  std::vector<engine::ChatMessage> const chat{{"user",
                                               "Write a detailed essay about the history of the printing press "
                                               "and how it changed science, religion and politics in Europe."}};
  auto const prompt = tokenizer.encode(engine::apply_chat_template(chat, true), true);
  // The forced-skip and batch phases measure decode, not attention over a long prompt: a short
  // prompt keeps their (dense) prefill cheap on a 7B model.
  std::vector<std::int32_t> const short_prompt(prompt.begin(),
                                               prompt.begin() + std::min<std::size_t>(8, prompt.size()));

  double const dense_bytes = static_cast<double>(model.bytes_per_token_dense());
  auto const ffn_bytes = [&](int l) { return static_cast<double>(model.layer(l).ffn_bytes()); };

  Report md;
  char date[32];
  std::time_t const now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::string const commit = shell_line("git rev-parse --short HEAD 2>/dev/null");
  std::string const cpu = shell_line("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2");
  std::string command = "cpu_decode";
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  md.text("# CPU decode benchmark\n");
  md.text("- date: " + std::string(date) + ", commit: " + (commit.empty() ? "unknown" : commit));
  md.text("- machine: " + cpu + ", " + std::to_string(threads) + " threads (" +
          std::to_string(std::thread::hardware_concurrency()) +
          " hardware threads), load average at start: " + shell_line("cut -d' ' -f1-3 /proc/loadavg"));
  md.text("- model: " + model_path + " (" + std::to_string(cfg.n_layers) + " layers, d=" + std::to_string(cfg.n_embd) +
          ", FFN " + std::to_string(cfg.n_ff) + ", " + std::to_string(cfg.n_heads) + "/" +
          std::to_string(cfg.n_kv_heads) + " heads, vocab " + std::to_string(cfg.vocab) + ")");
  md.text("- weight bytes per dense token: " + fmt("%.2f MB", dense_bytes / 1e6) +
          "; one layer's FFN: " + fmt("%.2f MB", ffn_bytes(cold) / 1e6));
  md.text("- activations: " + precision_name + ", KV cache: " + std::string(engine::kv_cache_type_name(opt.kv_cache)) +
          "; " + std::to_string(opt.tokens) + " timed decode tokens per run, " + std::to_string(opt.rounds) +
          " interleaved rounds, medians");
  md.text("- model load (GGUF open + tensor views + tokenizer): " + fmt("%.2f s", load_s));
  md.text("- command: `" + command + "`");

  // ---- memory: a KV cache of the full context allocated, a short fill, peak RSS.
  if (opt.runs("memory")) {
    std::cerr << "[memory] context " << opt.memory_context << " tokens, filling " << opt.memory_fill << "\n";
    int const context = std::min(opt.memory_context, cfg.context_length);
    std::vector<std::int32_t> fill;
    while (static_cast<int>(fill.size()) < opt.memory_fill) fill.insert(fill.end(), prompt.begin(), prompt.end());
    fill.resize(static_cast<std::size_t>(opt.memory_fill));
    long const before_kib = status_kib("VmRSS:");
    {
      engine::Generator gen(model, pool, real_policy(opt, cfg.n_layers).policies, context,
                            {.precision = opt.precision, .kv_cache = opt.kv_cache});
      auto const start = Clock::now();
      auto logits = gen.prefill(fill);
      std::cerr << "    prefilled " << fill.size() << " tokens in " << fmt("%.1f s", seconds_since(start)) << "\n";
      std::mt19937_64 rng(0);
      for (int i = 0; i < 4; ++i) logits = gen.decode(engine::sample(logits, {}, rng));
    }
    double const kv_per_token = static_cast<double>(engine::kv_bytes_per_token(cfg, opt.kv_cache));
    md.heading("Memory");
    md.table({"quantity", "value"});
    md.row({"context allocated / filled", std::to_string(context) + " / " + std::to_string(fill.size()) + " tokens"});
    md.row({"KV cache per token of context (" + std::string(engine::kv_cache_type_name(opt.kv_cache)) + ")",
            fmt("%.3f MB", kv_per_token / 1e6)});
    md.row({"KV cache of the full context", fmt("%.1f MB", kv_per_token * context / 1e6)});
    md.row({"resident before the generator", fmt("%.1f MB", before_kib * 1024.0 / 1e6)});
    md.row({"**peak resident memory**", fmt("%.1f MB", status_kib("VmHWM:") * 1024.0 / 1e6)});
    md.text(
        "\nThe KV cache is allocated (and zeroed) for the whole context when the generator is built, so the\n"
        "peak counts it whatever the fill; the fill decides only how many weight pages were touched.");
  }

  // ---- bandwidth
  double bandwidth = 0;
  if (opt.runs("bandwidth") || opt.runs("policy") || opt.runs("forced")) {
    std::cerr << "[bandwidth] streaming 1 GiB, " << threads << " threads, best of 5\n";
    bandwidth = measure_read_bandwidth(threads);
    std::cerr << "    " << fmt("%.2f GB/s", bandwidth / 1e9) << "\n";
    md.heading("Read bandwidth");
    md.table({"quantity", "value"});
    md.row({"read bandwidth (measured)", fmt("%.2f GB/s", bandwidth / 1e9)});
    md.row({"roofline (bandwidth / weight bytes per dense token)", fmt("%.2f tok/s", bandwidth / dense_bytes)});
  }
  double const roofline = bandwidth / dense_bytes;

  // ---- policy: dense vs the real policy, one sequence.
  RealPolicy const real = real_policy(opt, cfg.n_layers);
  if (opt.runs("policy")) {
    policy::ConfigurablePolicies dense = real.policies;
    dense.skip = policy::Greedy{opt.threshold, 8, 0};  // same code path, no spans
    std::vector<double> dense_tps, skip_tps, ratio;
    DecodeRun skip_run;
    for (int r = 0; r < opt.rounds; ++r) {
      std::cerr << "[policy] round " << r + 1 << "/" << opt.rounds << ": dense, then " << real.source << "\n";
      dense_tps.push_back(decode(model, pool, dense, prompt, opt.tokens, opt, "dense").tokens_per_second);
      skip_run = decode(model, pool, real.policies, prompt, opt.tokens, opt, "skip");
      skip_tps.push_back(skip_run.tokens_per_second);
      ratio.push_back(skip_tps.back() / dense_tps.back());
    }
    double const skip_bytes = dense_bytes - skip_run.skipped_per_token * ffn_bytes(cold);
    double const speedup = median(ratio), ideal = dense_bytes / skip_bytes;
    md.heading("Dense vs the real policy (one sequence)");
    md.text("policy: " + real.source + ", " + skipllm::describe(real.policies) + "; the " +
            std::to_string(prompt.size()) + "-token chat prompt; the policy's warm-up tokens run before timing\n");
    md.table({"quantity", "value"});
    md.row({"dense decode", fmt("%.2f tok/s", median(dense_tps)) + fmt(" (spread %.1f%%)", 100 * spread(dense_tps))});
    md.row({"**dense efficiency** (dense / roofline)", fmt("%.1f%%", 100 * median(dense_tps) / roofline)});
    md.row({"FFN skip ratio achieved (all blocks, after the warm-up)", fmt("%.1f%%", 100 * skip_run.skip_ratio)});
    md.row({"skip decode", fmt("%.2f tok/s", median(skip_tps))});
    md.row({"skip speedup (median of per-round ratios)", fmt("%.3fx", speedup)});
    md.row({"byte-ideal speedup", fmt("%.3fx", ideal)});
    md.row({"speedup / byte-ideal speedup", fmt("%.1f%%", 100 * speedup / ideal)});
  }

  // ---- forced: static masks at fixed ratios, interleaved.
  if (opt.runs("forced")) {
    std::size_t const n = opt.skip_percents.size();
    std::vector<policy::ConfigurablePolicies> masks;
    std::vector<std::vector<int>> chosen(n);
    std::vector<double> ideal(n);
    for (std::size_t i = 0; i < n; ++i) {
      int const count = static_cast<int>(std::lround(opt.skip_percents[i] / 100.0 * cfg.n_layers));
      masks.push_back(forced_skip(cfg.n_layers, cold, count, chosen[i]));
      double skipped = 0;
      for (int l : chosen[i]) skipped += ffn_bytes(l);
      ideal[i] = dense_bytes / (dense_bytes - skipped);
    }
    std::vector<std::vector<double>> tps(n), ratio(n);
    for (int r = 0; r < opt.rounds; ++r) {
      for (std::size_t i = 0; i < n; ++i) {
        std::cerr << "[forced] round " << r + 1 << "/" << opt.rounds << ": " << chosen[i].size() << " of "
                  << cfg.n_layers << " FFNs skipped\n";
        tps[i].push_back(
            decode(model, pool, masks[i], short_prompt, opt.tokens, opt, std::to_string(chosen[i].size()) + " skipped")
                .tokens_per_second);
      }
      for (std::size_t i = 0; i < n; ++i) ratio[i].push_back(tps[i].back() / tps[0].back());
    }
    md.heading("Forced skip ratios (static mask, one sequence)");
    md.text("FFN blocks skipped in every token, spread over layers " + std::to_string(cold) + ".." +
            std::to_string(cfg.n_layers - cold - 1) + " (outside the cold layers); speedup against the first row, " +
            "median of per-round ratios. Byte-ideal: dense bytes per token / bytes with those FFNs not read.\n");
    md.table({"FFN blocks skipped", "tok/s (median)", "spread", "speedup", "byte-ideal", "speedup / ideal",
              "gain / ideal gain", "dense efficiency"});
    for (std::size_t i = 0; i < n; ++i) {
      double const s = median(ratio[i]);
      md.row({std::to_string(chosen[i].size()) + " of " + std::to_string(cfg.n_layers) +
                  fmt(" (%.1f%%)", 100.0 * chosen[i].size() / cfg.n_layers),
              fmt("%.2f", median(tps[i])), fmt("%.1f%%", 100 * spread(tps[i])), fmt("%.3fx", s), fmt("%.3fx", ideal[i]),
              fmt("%.1f%%", 100 * s / ideal[i]), ideal[i] > 1 ? fmt("%.1f%%", 100 * (s - 1) / (ideal[i] - 1)) : "-",
              i == 0 && bandwidth > 0 ? fmt("%.1f%%", 100 * median(tps[i]) / roofline) : ""});
    }
  }

  // ---- batch: several sequences at once, dense and with the real policy.
  if (opt.runs("batch")) {
    policy::ConfigurablePolicies dense = real.policies;
    dense.skip = policy::Greedy{opt.threshold, 8, 0};
    std::vector<std::string> const topics{"the printing press", "the steam engine", "the telescope",
                                          "vaccination",        "the telegraph",    "double-entry bookkeeping",
                                          "the compass",        "paper money"};
    md.heading("Several sequences at once");
    md.text("policy: " + real.source + ", " + skipllm::describe(real.policies) +
            "; each sequence its own chat prompt; the policy's warm-up tokens run before timing, and " +
            std::to_string(opt.tokens) + " steps are timed. Reads avoided: FFN weight matrices not read / " +
            "(steps x layers), a matrix being read once per step if any row runs it.\n");
    md.table({"sequences", "dense tok/s", "policy tok/s", "speedup", "blocks skipped (per row)", "FFN reads avoided"});
    for (int const b : opt.batches) {
      std::vector<std::vector<std::int32_t>> prompts;
      for (int s = 0; s < b; ++s) {
        std::vector<engine::ChatMessage> const c{
            {"user", "Write a short history of " + topics[static_cast<std::size_t>(s) % topics.size()] + "."}};
        prompts.push_back(tokenizer.encode(engine::apply_chat_template(c, true), true));
      }
      std::vector<double> dense_tps, skip_tps, ratio;
      BatchRun skip_run;
      for (int r = 0; r < opt.rounds; ++r) {
        std::cerr << "[batch] " << b << " sequences, round " << r + 1 << "/" << opt.rounds << ": dense, policy\n";
        dense_tps.push_back(decode_batch(model, pool, dense, prompts, opt.tokens, opt, "dense").tokens_per_second);
        skip_run = decode_batch(model, pool, real.policies, prompts, opt.tokens, opt, "policy");
        skip_tps.push_back(skip_run.tokens_per_second);
        ratio.push_back(skip_tps.back() / dense_tps.back());
      }
      md.row({std::to_string(b), fmt("%.2f", median(dense_tps)), fmt("%.2f", median(skip_tps)),
              fmt("%.3fx", median(ratio)), fmt("%.1f%%", 100 * skip_run.skip_ratio),
              fmt("%.1f%%", 100 * skip_run.reads_avoided)});
    }
  }

  std::cout << md.str();
  if (!opt.out_dir.empty()) {
    std::filesystem::create_directories(opt.out_dir);
    std::string day(date, 10);
    std::string const path = opt.out_dir + "/cpu_decode_" + day + ".md";
    std::ofstream(path) << md.str();
    std::cerr << "results written to " << path << "\n";
  }
  return 0;
} catch (std::exception const& e) {
  std::cerr << "cpu_decode: " << e.what() << "\n";
  return 2;
}
