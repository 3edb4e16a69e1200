// CPU decode benchmark: dense vs FFN-skipping decode on the reference engine, side by side in
// one run, against the machine's measured memory bandwidth.
//
//   cpu_decode [-m MODEL] [-t THREADS] [-n TOKENS] [--rounds R] [--threshold TAU]
//              [--precision int8|fp32] [--out DIR]
//
// Reported as ratios, because shared machines are noisy:
//   dense efficiency  = dense tok/s / (read bandwidth / weight bytes per dense token)
//   skip speedup      = skip tok/s / dense tok/s, against the byte-ideal speedup
//                       (dense bytes per token / skip bytes per token at the achieved ratio)
// Also: model load time (warm page cache), peak resident memory with a 2,048-token context.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
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
#include "format/tokenizer.hpp"
#include "model/generator.hpp"

namespace engine = skipllm::engine;
using skipllm::engine::eval::Clock;
using skipllm::engine::eval::seconds_since;

namespace {

struct Options {
  std::string model;
  int threads = 0;
  int tokens = 128;
  int rounds = 3;
  float threshold = 0.95f;
  engine::ActivationPrecision precision = engine::ActivationPrecision::kInt8;
  std::string out_dir;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Read bandwidth: every thread sums its share of a buffer far larger than the caches; best of
// several passes. The engine's decode is a read-only stream over the weights, so this is the
// roofline that matters.
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

long peak_rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

struct DecodeRun {
  double tokens_per_second = 0;
  double skipped_per_token = 0;  // FFN blocks
  double skip_ratio = 0;
};

DecodeRun decode(engine::LlamaModel const& model, engine::ThreadPool& pool,
                 skipllm::policy::ConfigurablePolicies const& policies, std::vector<std::int32_t> const& prompt,
                 int tokens, engine::ActivationPrecision precision) {
  engine::Generator gen(model, pool, policies, 2048, {.precision = precision});
  auto logits = gen.prefill(prompt);
  std::mt19937_64 rng(0);
  auto const start = Clock::now();
  for (int i = 0; i < tokens; ++i) logits = gen.decode(engine::sample(logits, {}, rng));  // EOG does not stop
  double const elapsed = seconds_since(start);
  auto const& st = gen.stack().statistics();
  return {tokens / elapsed, static_cast<double>(st.skipped_blocks()) / tokens, st.skip_ratio()};
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string const a = argv[i];
    auto value = [&] {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return std::string(argv[++i]);
    };
    if (a == "-m" || a == "--model")
      o.model = value();
    else if (a == "-t" || a == "--threads")
      o.threads = std::stoi(value());
    else if (a == "-n" || a == "--tokens")
      o.tokens = std::stoi(value());
    else if (a == "--rounds")
      o.rounds = std::stoi(value());
    else if (a == "--threshold")
      o.threshold = std::stof(value());
    else if (a == "--out")
      o.out_dir = value();
    else if (a == "--precision") {
      std::string const p = value();
      if (p != "int8" && p != "fp32") throw std::invalid_argument("--precision is int8 or fp32");
      o.precision = p == "int8" ? engine::ActivationPrecision::kInt8 : engine::ActivationPrecision::kFloat32;
    } else
      throw std::invalid_argument("unknown option " + a);
  }
  if (o.tokens < 16 || o.tokens > 1500) throw std::invalid_argument("--tokens must be in [16, 1500]");
  if (o.rounds < 1) throw std::invalid_argument("--rounds must be >= 1");
  return o;
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

}  // namespace

int main(int argc, char** argv) try {
  Options const opt = parse(argc, argv);
  std::optional<std::string> const explicit_model = opt.model.empty() ? std::nullopt : std::optional(opt.model);
  std::string const model_path =
      engine::resolve_model(explicit_model, engine::ModelEnvironment::from_process(), std::cerr).string();
  int const threads =
      opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  // Load time from a warm page cache: open once to warm it, then time the best of three.
  { auto warm = engine::GgufFile::open(model_path); }
  double load_s = 1e9;
  for (int i = 0; i < 3; ++i) {
    auto const start = Clock::now();
    auto f = engine::GgufFile::open(model_path);
    engine::LlamaModel m(f);
    engine::Tokenizer tok = engine::tokenizer_from_gguf(f);
    load_s = std::min(load_s, seconds_since(start));
  }
  auto const file = engine::GgufFile::open(model_path);
  engine::LlamaModel const model(file);
  engine::Tokenizer const tokenizer = engine::tokenizer_from_gguf(file);
  engine::ThreadPool pool(threads);
  auto const& cfg = model.config();
  int const cold = (cfg.n_layers + 3) / 6;

  std::vector<engine::ChatMessage> const chat{{"user",
                                               "Write a detailed essay about the history of the printing press "
                                               "and how it changed science, religion and politics in Europe."}};
  auto const prompt = tokenizer.encode(engine::apply_chat_template(chat, true), true);

  skipllm::policy::ConfigurablePolicies const dense{
      skipllm::policy::Greedy{opt.threshold, 8, 0}, {cold, cold}, {16, 6}};
  skipllm::policy::ConfigurablePolicies const skip{skipllm::policy::Greedy{opt.threshold, 8, 1}, {cold, cold}, {16, 6}};

  // Peak memory with a full 2,048-token context: a long prompt, then decoding to the end.
  // Measured first, before the bandwidth test allocates its 1 GiB buffer.
  std::vector<std::int32_t> long_prompt;
  while (long_prompt.size() < 1900) long_prompt.insert(long_prompt.end(), prompt.begin(), prompt.end());
  long_prompt.resize(1900);
  {
    engine::Generator gen(model, pool, skip, 2048, {.precision = opt.precision});
    auto logits = gen.prefill(long_prompt);
    std::mt19937_64 rng(0);
    while (gen.position() < 2048) logits = gen.decode(engine::sample(logits, {}, rng));
  }
  long const rss_kib = peak_rss_kib();

  std::cerr << "measuring read bandwidth (" << threads << " threads)...\n";
  double const bandwidth = measure_read_bandwidth(threads);

  std::vector<double> dense_tps, skip_tps, ratio;
  DecodeRun skip_run;
  for (int r = 0; r < opt.rounds; ++r) {  // interleaved, so drift hits both alike
    std::cerr << "round " << r + 1 << "/" << opt.rounds << ": dense, skip\n";
    dense_tps.push_back(decode(model, pool, dense, prompt, opt.tokens, opt.precision).tokens_per_second);
    skip_run = decode(model, pool, skip, prompt, opt.tokens, opt.precision);
    skip_tps.push_back(skip_run.tokens_per_second);
    ratio.push_back(skip_tps.back() / dense_tps.back());
  }

  double const dense_bytes = static_cast<double>(model.bytes_per_token_dense());
  double const skip_bytes = dense_bytes - skip_run.skipped_per_token * static_cast<double>(model.ffn_bytes_per_layer());
  double const roofline = bandwidth / dense_bytes;
  double const dense_median = median(dense_tps), skip_median = median(skip_tps), speedup = median(ratio);
  double const ideal = dense_bytes / skip_bytes;

  char date[32];
  std::time_t const now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  std::string const commit = shell_line("git rev-parse --short HEAD 2>/dev/null");
  std::string const cpu = shell_line("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2");

  std::ostringstream md;
  md << "# CPU decode benchmark\n\n"
     << "- date: " << date << ", commit: " << (commit.empty() ? "unknown" : commit) << "\n"
     << "- machine: " << cpu << ", " << threads << " threads (" << std::thread::hardware_concurrency()
     << " hardware threads)\n"
     << "- model: " << model_path << " (" << cfg.n_layers << " layers, d=" << cfg.n_embd << ", FFN " << cfg.n_ff
     << ")\n"
     << "- policy (skip): " << skipllm::describe(skip) << "\n"
     << "- " << opt.tokens << " decoded tokens per run after a " << prompt.size() << "-token chat prompt, "
     << opt.rounds << " interleaved rounds, medians\n"
     << "- activations: " << (opt.precision == engine::ActivationPrecision::kInt8 ? "int8 per block of 32" : "fp32")
     << "\n"
     << "- command: `cpu_decode -t " << threads << " -n " << opt.tokens << " --rounds " << opt.rounds << " --threshold "
     << opt.threshold << " --precision " << (opt.precision == engine::ActivationPrecision::kInt8 ? "int8" : "fp32")
     << "`\n\n"
     << "| quantity | value |\n|---|---|\n";
  char row[256];
  auto add = [&](char const* name, char const* fmt, double v) {
    std::snprintf(row, sizeof row, fmt, v);
    md << "| " << name << " | " << row << " |\n";
  };
  add("read bandwidth (measured)", "%.2f GB/s", bandwidth / 1e9);
  add("weight bytes per dense token", "%.2f MB", dense_bytes / 1e6);
  add("roofline (bandwidth / bytes)", "%.1f tok/s", roofline);
  add("dense decode", "%.1f tok/s", dense_median);
  add("**dense efficiency** (dense / roofline)", "%.1f%%", 100 * dense_median / roofline);
  add("FFN skip ratio achieved (all blocks)", "%.1f%%", 100 * skip_run.skip_ratio);
  add("weight bytes per skip token", "%.2f MB", skip_bytes / 1e6);
  add("skip decode", "%.1f tok/s", skip_median);
  add("skip speedup (median of per-round ratios)", "%.3fx", speedup);
  add("byte-ideal speedup", "%.3fx", ideal);
  add("**speedup / byte-ideal speedup**", "%.1f%%", 100 * speedup / ideal);
  add("gain / byte-ideal gain, (speedup-1)/(ideal-1)", "%.1f%%", 100 * (speedup - 1) / std::max(ideal - 1, 1e-9));
  add("model load, warm page cache", "%.3f s", load_s);
  add("peak resident memory, 2,048-token context", "%.1f MB", rss_kib / 1024.0);
  md << "\nThe last two speed rows compare the achieved speedup with the byte-ideal one, as a ratio of\n"
        "speedups and (stricter) as a ratio of gains over dense.\n";

  std::cout << md.str();
  if (!opt.out_dir.empty()) {
    std::string const path = opt.out_dir + "/cpu_decode_" + date + ".md";
    std::ofstream(path) << md.str();
    std::cerr << "results written to " << path << "\n";
  }
  return 0;
} catch (std::exception const& e) {
  std::cerr << "cpu_decode: " << e.what() << "\n";
  return 2;
}
