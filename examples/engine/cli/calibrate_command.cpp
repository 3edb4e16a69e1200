#include "cli/calibrate_command.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "cli/support.hpp"
#include "eval/calibrate.hpp"
#include "eval/timing.hpp"
#include "format/gguf.hpp"
#include "format/model_cache.hpp"
#include "format/policy_config.hpp"
#include "format/tokenizer.hpp"
#include "model/llama_model.hpp"
#include "model/thread_pool.hpp"

#ifndef SKIPLLM_ENGINE_DATA_DIR
#  define SKIPLLM_ENGINE_DATA_DIR ""
#endif

namespace skipllm::cli {

namespace fs = std::filesystem;
namespace eng = skipllm::engine;
namespace ev = skipllm::engine::eval;

namespace {

std::vector<std::string> split_commas(std::string const& s) {
  std::vector<std::string> out;
  std::size_t begin = 0;
  while (begin <= s.size()) {
    std::size_t const end = std::min(s.find(',', begin), s.size());
    out.push_back(s.substr(begin, end - begin));
    begin = end + 1;
  }
  return out;
}

}  // namespace

std::vector<std::string> default_calibration_texts() {
  fs::path dir;
  if (char const* env = std::getenv("SKIPLLM_DATA"); env != nullptr && *env)
    dir = env;
  else
    dir = SKIPLLM_ENGINE_DATA_DIR;
  std::vector<std::string> out;
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir / "calibration", ec)) return out;
  for (auto const& e : fs::directory_iterator(dir / "calibration", ec)) {
    if (e.is_regular_file() && e.path().extension() == ".txt") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool parse_calibrate_options(std::vector<std::string> const& args, std::size_t first, CalibrateOptions& o,
                             std::vector<std::string>& warnings) {
  Command const c = Command::calibrate;
  std::vector<Option> const options = {
      {"--model", 'm', true, [&](OptionArg const& a) { o.model = a.value; }},
      {"--target-skip", 0, true, [&](OptionArg const& a) { o.target_skip = parse_float_option(a, 0.0f, 0.95f, true); }},
      {"--per-layer", 0, false, [&](OptionArg const&) { o.per_layer = true; }},
      {"--static", 0, false, [&](OptionArg const&) { o.static_layers = true; }},
      {"--text", 0, true,
       [&](OptionArg const& a) {
         for (auto const& f : split_commas(a.value)) {
           if (f.empty()) throw UsageError("--text: empty file name in '" + a.value + "'" + help_hint(c), c);
           o.texts.push_back(f);
         }
       }},
      {"--output", 'o', true,
       [&](OptionArg const& a) {
         if (a.value.empty()) throw UsageError("--output needs a file name" + help_hint(c), c);
         o.output = a.value;
       }},
      {"--window", 0, true, [&](OptionArg const& a) { o.window = static_cast<int>(parse_int_option(a, 8, 4096)); }},
      {"--max-positions", 0, true,
       [&](OptionArg const& a) { o.max_positions = static_cast<int>(parse_int_option(a, 0, 10'000'000)); }},
      {"--warmup", 0, true, [&](OptionArg const& a) { o.warmup = static_cast<int>(parse_int_option(a, 0, 100'000)); }},
      {"--refresh-every", 0, true,
       [&](OptionArg const& a) { o.refresh_every = static_cast<int>(parse_int_option(a, 0, 100'000)); }},
      {"--no-sensitivity", 0, false, [&](OptionArg const&) { o.sensitivity = false; }},
      {"--tolerance", 0, true, [&](OptionArg const& a) { o.tolerance = parse_float_option(a, 0.0f, 0.5f, true); }},
      {"--max-iterations", 0, true,
       [&](OptionArg const& a) { o.max_iterations = static_cast<int>(parse_int_option(a, 1, 64)); }},
      {"--candidates", 0, true,
       [&](OptionArg const& a) {
         for (auto const& item : split_commas(a.value)) {
           std::size_t const x = item.find('x');
           bool ok = x != std::string::npos && x > 0 && x + 1 < item.size();
           int span = 0, spans = 0;
           if (ok) {
             std::string const s = item.substr(0, x), n = item.substr(x + 1);
             ok = (s == "all" || s.find_first_not_of("0123456789") == std::string::npos) &&
                  n.find_first_not_of("0123456789") == std::string::npos && n.size() < 5 && s.size() < 5;
             if (ok) {
               span = s == "all" ? skipllm::policy::kToColdRegion : std::stoi(s);
               spans = std::stoi(n);
               ok = span >= 1 && spans >= 1;
             }
           }
           if (!ok) {
             throw UsageError(
                 "--candidates: expected SPANxSPANS[,...] such as 2x4,allx1, got '" + item + "'" + help_hint(c), c);
           }
           o.candidates.emplace_back(span, spans);
         }
       }},
      {"--cold", 0, true,
       [&](OptionArg const& a) {
         for (auto const& item : split_commas(a.value)) {
           OptionArg const one{a.name, item, a.command};
           o.cold.push_back(static_cast<int>(parse_int_option(one, 0, 255)));
         }
       }},
      {"--sensitivity", 0, true,
       [&](OptionArg const& a) {
         if (a.value.empty()) throw UsageError("--sensitivity needs a file name" + help_hint(c), c);
         o.sensitivity_file = a.value;
       }},
      {"--threads", 't', true, [&](OptionArg const& a) { o.threads = static_cast<int>(parse_int_option(a, 0, 1024)); }},
      {"--quiet", 'q', false, [&](OptionArg const&) { o.quiet = true; }},
  };
  std::set<std::string> given;
  if (!parse_option_list(args, first, c, options, given)) return false;
  if (!given.count("--target-skip")) throw UsageError("missing --target-skip R (e.g. 0.25)" + help_hint(c), c);
  if (!o.output) throw UsageError("missing -o/--output FILE (the policy config to write)" + help_hint(c), c);
  if (o.per_layer && o.static_layers) throw UsageError("--per-layer and --static conflict" + help_hint(c), c);
  if (o.static_layers && !o.sensitivity)
    throw UsageError("--static needs the sensitivity (drop --no-sensitivity)" + help_hint(c), c);
  (void)warnings;
  return true;
}

std::string calibrate_help_text() {
  return "usage: skipllm calibrate --target-skip R -o FILE [options]\n\n"
         "Chooses cold layers and skip threshold(s) so that FFN-SkipLLM skips the fraction R of all\n"
         "FFN blocks on calibration text while keeping its quality, and writes a policy config file\n"
         "(docs/policy_config.md) for 'skipllm generate --config' and 'skipllm eval --config'.\n\n"
         "The text is fed token by token (teacher forcing) through the skipping decoder. Steps:\n"
         "dense similarity profile; per-layer sensitivity (NLL increase when one layer's FFN is\n"
         "skipped); cold layers (first, last, low-similarity and most sensitive layers); then, for\n"
         "several (span, spans per token) candidates, a bisection of the threshold on real skipping\n"
         "runs until the ratio is within the tolerance of R; the candidate with the lowest NLL wins.\n\n"
         "  -m, --model PATH        GGUF model (default: $SKIPLLM_MODEL, else the cached default model)\n"
         "      --target-skip R     skipped / all FFN blocks of decode steps, 0 < R <= 0.95 (required)\n"
         "      --per-layer         one threshold per layer: the quantile q of each layer's dense scores\n"
         "                          (q is bisected) instead of one global threshold\n"
         "      --static            no threshold: skip the k least sensitive layers in every token,\n"
         "                          k growing until the target is reached (a static baseline)\n"
         "  -o, --output FILE       the config file to write (required)\n"
         "      --text FILE[,FILE]  calibration text (default: the dev set's calibration split,\n"
         "                          <data>/calibration/*.txt; data = $SKIPLLM_DATA or examples/engine/data)\n"
         "      --window N          tokens per calibration sequence, 8..4096 (default 128)\n"
         "      --max-positions N   scored positions in all, 0 = the whole text (default 768)\n"
         "      --warmup N          dense decode tokens per sequence (default 16)\n"
         "      --refresh-every M   then every M-th token dense, 0 = never (default 0)\n"
         "      --no-sensitivity    skip the per-layer sensitivity runs (cold = ends + low similarity)\n"
         "      --cold LIST         use these cold layers, e.g. 0,1,29 (no sensitivity runs)\n"
         "      --sensitivity FILE  read the per-layer sensitivity from FILE when it exists, else\n"
         "                          measure it and write it there (one number per line)\n"
         "      --candidates LIST   (span x spans per token) candidates, e.g. 2x4,4x2,allx1\n"
         "                          (default: derived from the target)\n"
         "      --tolerance T       accepted |achieved - R| (default 0.01)\n"
         "      --max-iterations N  bisection steps per candidate (default 9)\n"
         "  -t, --threads N         worker threads, 0 = one per hardware thread (default 0)\n"
         "  -q, --quiet             no progress on stderr\n"
         "  -h, --help              this help\n\n"
         "Example:\n"
         "  skipllm calibrate --target-skip 0.25 -o smollm2.json && skipllm generate --config smollm2.json -p \"Hi\"\n";
}

int run_calibrate(CalibrateOptions const& o, std::ostream& out, std::ostream& err) {
  ev::Clock::time_point const start = ev::Clock::now();
  std::vector<std::string> texts = o.texts.empty() ? default_calibration_texts() : o.texts;
  if (texts.empty()) {
    err << "skipllm: error: no calibration text: pass --text FILE (no dev-set calibration split found)\n";
    return kExitUsage;
  }
  std::string all_text_names;
  for (auto const& t : texts) all_text_names += (all_text_names.empty() ? "" : ",") + fs::path(t).filename().string();

  fs::path model_path;
  try {
    model_path = eng::resolve_model(o.model, eng::ModelEnvironment::from_process(), err);
  } catch (std::exception const& e) {
    err << "skipllm: error: " << e.what() << "\n";
    return kExitFetch;
  }
  std::error_code ec;
  if (!fs::is_regular_file(model_path, ec)) {
    err << "skipllm: error: model file not found: " << model_path.string() << "\n";
    return kExitUsage;
  }
  try {
    eng::GgufFile const file = eng::GgufFile::open(model_path);
    eng::LlamaModel const model(file);
    eng::Tokenizer const tokenizer = eng::tokenizer_from_gguf(file);
    bool const add_bos = adds_bos_token(file);

    // Tokenize every text and cut it into sequences of `window` tokens (each a fresh sequence
    // with its own warm-up), until max_positions positions are collected.
    std::vector<std::vector<std::int32_t>> sequences;
    std::size_t positions = 0;
    std::size_t const cap = o.max_positions > 0 ? static_cast<std::size_t>(o.max_positions) : SIZE_MAX;
    for (auto const& name : texts) {
      std::ifstream in(name, std::ios::binary);
      if (!in) {
        err << "skipllm: error: cannot read --text " << name << "\n";
        return kExitUsage;
      }
      std::string const text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::vector<std::int32_t> const ids = tokenizer.encode(text, false);
      for (std::size_t b = 0; b + 2 <= ids.size() && positions < cap; b += static_cast<std::size_t>(o.window)) {
        std::vector<std::int32_t> seq;
        if (add_bos && tokenizer.bos_id() >= 0) seq.push_back(tokenizer.bos_id());
        std::size_t const n =
            std::min<std::size_t>({static_cast<std::size_t>(o.window), ids.size() - b, cap - positions + 1});
        seq.insert(seq.end(), ids.begin() + static_cast<std::ptrdiff_t>(b),
                   ids.begin() + static_cast<std::ptrdiff_t>(b + n));
        if (seq.size() < 2) break;
        positions += seq.size() - 1;
        sequences.push_back(std::move(seq));
      }
    }
    if (sequences.empty()) {
      err << "skipllm: error: the calibration text is empty\n";
      return kExitUsage;
    }

    eng::calibrate::Options co;
    co.target_skip = o.target_skip;
    co.tolerance = o.tolerance;
    co.per_layer = o.per_layer;
    co.static_layers = o.static_layers;
    co.max_iterations = o.max_iterations;
    co.warmup_tokens = o.warmup;
    co.warmup_every = o.refresh_every;
    co.sensitivity = o.sensitivity;
    co.candidates = o.candidates;
    co.cold = o.cold;
    if (o.sensitivity_file && fs::exists(*o.sensitivity_file, ec)) {
      std::ifstream in(*o.sensitivity_file);
      double v;
      while (in >> v) co.known_sensitivity.push_back(v);
      if (!o.quiet) err << "calibrate: per-layer sensitivity read from " << *o.sensitivity_file << "\n";
    }
    eng::ThreadPool pool(o.threads);
    auto const progress = [&](std::string const& line) {
      if (!o.quiet) {
        char stamp[32];
        std::snprintf(stamp, sizeof stamp, "[%6.1fs] ", ev::seconds_since(start));
        err << stamp << line << "\n" << std::flush;
      }
    };
    eng::calibrate::Result r = eng::calibrate::calibrate_model(model, pool, std::move(sequences), co, progress);

    if (o.sensitivity_file && co.known_sensitivity.empty() && !r.sensitivity.empty()) {
      std::ofstream sf(*o.sensitivity_file);
      for (double const v : r.sensitivity) sf << v << "\n";
    }
    eng::PolicyConfig& c = r.config;
    if (std::string name = model_name(file); !name.empty()) c.model_name = std::move(name);
    c.model_file = model_path.filename().string();
    c.tool = "skipllm calibrate";
    std::string cmd = "skipllm calibrate --target-skip ";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", o.target_skip);
    cmd += buf;
    if (o.per_layer) cmd += " --per-layer";
    if (o.static_layers) cmd += " --static";
    cmd += " --window " + std::to_string(o.window) + " --max-positions " + std::to_string(o.max_positions) +
           " --warmup " + std::to_string(o.warmup) + " --refresh-every " + std::to_string(o.refresh_every);
    if (!o.sensitivity) cmd += " --no-sensitivity";
    if (!o.cold.empty()) {
      cmd += " --cold ";
      for (std::size_t i = 0; i < o.cold.size(); ++i) cmd += (i ? "," : "") + std::to_string(o.cold[i]);
    }
    if (!o.candidates.empty()) {
      cmd += " --candidates ";
      for (std::size_t i = 0; i < o.candidates.size(); ++i) {
        cmd += i ? "," : "";
        cmd += o.candidates[i].first >= skipllm::policy::kToColdRegion ? std::string("all")
                                                                       : std::to_string(o.candidates[i].first);
        cmd += "x" + std::to_string(o.candidates[i].second);
      }
    }
    c.command = cmd;
    std::time_t const now = std::time(nullptr);
    char date[32];
    std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
    c.date = date;
    c.data = all_text_names;
    eng::save_policy_config(*o.output, c);
    if (!o.quiet) {
      err << "calibrate: skip " << r.achieved.skip_ratio << " (target " << o.target_skip << "), perplexity "
          << std::exp(r.achieved.nll) << " vs dense " << std::exp(r.dense.nll) << ", top-1 agreement "
          << r.achieved.agreement << "\n";
    }
    out << *o.output << "\n";
  } catch (eng::PolicyConfigError const& e) {
    err << "skipllm: error: " << e.what() << "\n";
    return kExitRuntime;
  } catch (std::exception const& e) {
    err << "skipllm: error: " << e.what() << "\n";
    return kExitRuntime;
  }
  return kExitOk;
}

}  // namespace skipllm::cli
