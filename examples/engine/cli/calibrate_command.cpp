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
#include "eval/standin_fit.hpp"
#include "eval/timing.hpp"
#include "format/gguf.hpp"
#include "format/model_cache.hpp"
#include "format/policy_config.hpp"
#include "format/standin_file.hpp"
#include "format/tokenizer.hpp"
#include "model/llama_model.hpp"
#include "model/standin.hpp"
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

// Each text cut into sequences of `window` tokens (each a fresh sequence with its own warm-up,
// after BOS when `bos` >= 0), until `cap` positions are collected.
std::vector<std::vector<std::int32_t>> text_windows(std::vector<std::vector<std::int32_t>> const& texts,
                                                    std::int32_t bos, int window, std::size_t cap) {
  std::vector<std::vector<std::int32_t>> sequences;
  std::size_t positions = 0;
  for (auto const& ids : texts) {
    for (std::size_t b = 0; b + 2 <= ids.size() && positions < cap; b += static_cast<std::size_t>(window)) {
      std::vector<std::int32_t> seq;
      if (bos >= 0) seq.push_back(bos);
      std::size_t const room = cap - positions + 1;  // one more token than positions: the last is only a target
      std::size_t const n =
          std::min<std::size_t>({static_cast<std::size_t>(window), ids.size() - b, room == 0 ? SIZE_MAX : room});
      seq.insert(seq.end(), ids.begin() + static_cast<std::ptrdiff_t>(b),
                 ids.begin() + static_cast<std::ptrdiff_t>(b + n));
      if (seq.size() < 2) break;
      positions += seq.size() - 1;
      sequences.push_back(std::move(seq));
    }
  }
  return sequences;
}

// The fitting text: every window of the calibration text, then what the model writes itself from
// the first 24 tokens of each window, until the fitting tokens are reached.
eng::StandInMaps fit_standins(CalibrateOptions const& o, eng::LlamaModel const& model, eng::ThreadPool& pool,
                              std::vector<std::vector<std::int32_t>> const& texts, std::int32_t bos, std::int32_t eos,
                              eng::standin::Progress const& progress) {
  std::size_t const want = o.standin_tokens > 0 ? static_cast<std::size_t>(o.standin_tokens)
                                                : 10u * static_cast<std::size_t>(model.config().n_embd);
  std::vector<std::vector<std::int32_t>> fit = text_windows(texts, bos, o.window, SIZE_MAX);
  std::size_t have = 0;
  std::vector<std::vector<std::int32_t>> prompts;
  for (auto const& s : fit) {
    have += s.size();
    prompts.emplace_back(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(s.size(), 24)));
  }
  if (have < want) {
    if (progress)
      progress("standin: " + std::to_string(have) + " tokens of calibration text; generating " +
               std::to_string(want - have) + " more");
    auto generated = eng::standin::self_generated(model, pool, prompts, want - have, o.window, eos, progress);
    for (auto& g : generated) fit.push_back(std::move(g));
  }
  eng::standin::FitOptions fo;
  fo.rank = o.standin_rank;
  fo.keep_report_ranks = o.standin_save.has_value();
  eng::standin::FitResult const r = eng::standin::fit_model(model, pool, fit, fo, progress);
  if (o.standin_save) {
    eng::save_standin_maps(*o.standin_save, r.maps);
    for (auto const& [rank, maps] : r.other_ranks) {
      fs::path other = *o.standin_save;
      other.replace_filename(other.stem().string() + (rank == 0 ? std::string("-full") : "-r" + std::to_string(rank)) +
                             other.extension().string());
      eng::save_standin_maps(other, maps);
    }
  }
  if (progress) {
    progress("standin: fitted on " + std::to_string(r.train_tokens) + " tokens, alpha chosen on " +
             std::to_string(r.held_tokens) + " held-out tokens");
  }
  return r.maps;
}

// Drops the maps of layers the config never skips (cold layers; for a static policy, all but its
// static layers).
void keep_skippable_layers(eng::StandInMaps& maps, eng::PolicyConfig const& c) {
  skipllm::policy::ConfigurablePolicies const p = eng::make_policies(c, maps.layers);
  std::erase_if(maps.maps, [&](eng::StandInMap const& m) {
    if (p.cold.is_cold(m.layer, maps.layers)) return true;
    return c.kind == eng::PolicyConfig::Kind::static_layers &&
           std::find(c.static_layers.begin(), c.static_layers.end(), m.layer) == c.static_layers.end();
  });
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
      {"--standin", 0, false, [&](OptionArg const&) { o.standin = true; }},
      {"--standin-rank", 0, true,
       [&](OptionArg const& a) {
         o.standin_rank = a.value == "full" ? 0 : static_cast<int>(parse_int_option(a, 1, 65535));
       }},
      {"--standin-feeds", 0, false, [&](OptionArg const&) { o.standin_feeds = true; }},
      {"--standin-tokens", 0, true,
       [&](OptionArg const& a) { o.standin_tokens = static_cast<int>(parse_int_option(a, 2, 10'000'000)); }},
      {"--standin-save", 0, true,
       [&](OptionArg const& a) {
         if (a.value.empty()) throw UsageError("--standin-save needs a file name" + help_hint(c), c);
         o.standin_save = a.value;
       }},
      {"--standin-from", 0, true,
       [&](OptionArg const& a) {
         if (a.value.empty()) throw UsageError("--standin-from needs a file name" + help_hint(c), c);
         o.standin_from = a.value;
       }},
  };
  std::set<std::string> given;
  if (!parse_option_list(args, first, c, options, given)) return false;
  if (!given.count("--target-skip")) throw UsageError("missing --target-skip R (e.g. 0.25)" + help_hint(c), c);
  if (!o.output) throw UsageError("missing -o/--output FILE (the policy config to write)" + help_hint(c), c);
  if (o.per_layer && o.static_layers) throw UsageError("--per-layer and --static conflict" + help_hint(c), c);
  if (o.static_layers && !o.sensitivity)
    throw UsageError("--static needs the sensitivity (drop --no-sensitivity)" + help_hint(c), c);
  for (char const* n : {"--standin-rank", "--standin-feeds", "--standin-tokens", "--standin-from", "--standin-save"}) {
    if (given.count(n) && !o.standin) throw UsageError(std::string(n) + " needs --standin" + help_hint(c), c);
  }
  if (o.standin_from && (given.count("--standin-rank") || given.count("--standin-tokens") || o.standin_save))
    throw UsageError(
        "--standin-from reuses fitted maps: --standin-rank, --standin-tokens and --standin-save do not apply" +
            help_hint(c),
        c);
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
         "      --standin           fit a stand-in for each layer's FFN (ridge least squares of\n"
         "                          f ~ A norm(h) + b on dense activations of the calibration text plus\n"
         "                          text the model generates from it), write it beside FILE as\n"
         "                          FILE's name with .standin, and calibrate with skipped FFNs stood in\n"
         "                          (docs/standin.md)\n"
         "      --standin-rank N    rank of each map, or 'full' (default 64)\n"
         "      --standin-feeds     a stand-in's similarity feeds the next layer's decision\n"
         "      --standin-tokens N  fitting tokens (default 10 x the hidden size)\n"
         "      --standin-from F    reuse the maps in stand-in file F instead of fitting\n"
         "      --standin-save F    also write the fitted maps of every layer to F (the config's file\n"
         "                          keeps only the layers its policy may skip), and at the other\n"
         "                          ranks to F's name + -r16, -r32, -r64, -r128, -full, for --standin-from\n"
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
    eng::LlamaModel model(file);
    eng::Tokenizer const tokenizer = eng::tokenizer_from_gguf(file);
    bool const add_bos = adds_bos_token(file);

    std::vector<std::vector<std::int32_t>> texts_tokens;
    for (auto const& name : texts) {
      std::ifstream in(name, std::ios::binary);
      if (!in) {
        err << "skipllm: error: cannot read --text " << name << "\n";
        return kExitUsage;
      }
      std::string const text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      texts_tokens.push_back(tokenizer.encode(text, false));
    }
    std::int32_t const bos = add_bos && tokenizer.bos_id() >= 0 ? tokenizer.bos_id() : -1;
    std::size_t const cap = o.max_positions > 0 ? static_cast<std::size_t>(o.max_positions) : SIZE_MAX;
    std::vector<std::vector<std::int32_t>> sequences = text_windows(texts_tokens, bos, o.window, cap);
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
    eng::StandInMaps standins;
    if (o.standin) {
      standins = o.standin_from ? eng::load_standin_maps(*o.standin_from)
                                : fit_standins(o, model, pool, texts_tokens, bos, tokenizer.eos_id(), progress);
      co.standin = eng::attach_standins(
          standins, o.standin_from ? *o.standin_from : std::string("the fitted stand-ins"), o.standin_feeds, model);
    }
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
    if (o.standin) {
      cmd += " --standin";
      if (o.standin_from) {
        cmd += " --standin-from " + *o.standin_from;
      } else {
        cmd += " --standin-rank " + (o.standin_rank == 0 ? std::string("full") : std::to_string(o.standin_rank));
        if (o.standin_tokens) cmd += " --standin-tokens " + std::to_string(o.standin_tokens);
      }
      if (o.standin_feeds) cmd += " --standin-feeds";
    }
    c.command = cmd;
    std::time_t const now = std::time(nullptr);
    char date[32];
    std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
    c.date = date;
    c.data = all_text_names;
    if (o.standin) {
      // Only the layers the policy may skip need a map.
      keep_skippable_layers(standins, c);
      fs::path const sidecar = fs::path(*o.output).replace_extension(".standin");
      eng::save_standin_maps(sidecar, standins);
      c.standin_file = sidecar.filename().string();
      c.standin_feeds = o.standin_feeds;
      if (!o.quiet)
        err << "calibrate: stand-ins for " << standins.maps.size() << " layers in " << sidecar.string() << "\n";
    }
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
