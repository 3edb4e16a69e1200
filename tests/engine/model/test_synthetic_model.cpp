// benchmarks/make_synthetic_gguf.py: the random-weight models of real shapes the decode
// benchmarks run on. A tiny shape of each weight type is written, then read back by the engine
// (tensor types and shapes, the default model's tokenizer), decoded one step (finite logits that
// differ between tokens) and described by `skipllm info`.
//
// The script needs Python with the gguf package: ctest passes SKIPLLM_BENCH_PYTHON (the venv
// tests/deps.sh creates) and SKIPLLM_SYNTHETIC_SCRIPT; without them the tests skip, saying why.
#define BOOST_TEST_MODULE engine synthetic models
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "format/gguf.hpp"
#include "format/tokenizer.hpp"
#include "model/generator.hpp"
#include "process_support.hpp"

using namespace skipllm::engine;
namespace fs = std::filesystem;

namespace {

// Runs the maker with `args`; returns its exit status (stderr kept in the scratch folder).
int run_maker(std::string const& args) {
  static int counter = 0;
  fs::path const log = engine_test::scratch() / ("maker" + std::to_string(counter++) + ".txt");
  std::string cmd = engine_test::shell_quote(engine_test::env_path("SKIPLLM_BENCH_PYTHON")->string());
  cmd.append(" ").append(engine_test::shell_quote(engine_test::env_path("SKIPLLM_SYNTHETIC_SCRIPT")->string()));
  cmd.append(" ").append(args).append(" --tokenizer-from ").append(engine_test::shell_quote(engine_test::model_path()));
  cmd.append(" >").append(engine_test::shell_quote(log.string())).append(" 2>&1");
  int const raw = std::system(cmd.c_str());
  if (raw != 0) BOOST_TEST_MESSAGE("maker output:\n" << engine_test::read_file(log));
  return raw != -1 && WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
}

// Precondition: the real model (whose tokenizer is copied), the script and a Python that can
// import gguf and numpy.
boost::test_tools::assertion_result maker_available(boost::unit_test::test_unit_id id) {
  if (auto const model = engine_test::model_available(id); !model) return model;
  auto const python = engine_test::env_path("SKIPLLM_BENCH_PYTHON");
  auto const script = engine_test::env_path("SKIPLLM_SYNTHETIC_SCRIPT");
  bool const ok =
      python && script && fs::is_regular_file(*script) &&
      std::system((engine_test::shell_quote(python->string()) + " -c 'import gguf, numpy' >/dev/null 2>&1").c_str()) ==
          0;
  boost::test_tools::assertion_result r(ok);
  r.message() << "no Python with the gguf package (SKIPLLM_BENCH_PYTHON=" << (python ? python->string() : "unset")
              << "): SKIPPED (tests/deps.sh creates the venv)";
  return r;
}

// A tiny model of `type` written once per type into the scratch folder.
fs::path tiny_model(std::string const& type) {
  fs::path const out = engine_test::scratch() / ("tiny." + type + ".gguf");
  if (!fs::exists(out)) {
    BOOST_TEST_REQUIRE(run_maker("--shape tiny --quiet --type " + type + " -o " + engine_test::shell_quote(out)) == 0);
  }
  return out;
}

std::string type_of(GgufFile const& f, std::string const& tensor) {
  return std::string(type_name(f.tensor(tensor).type));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(synthetic_model, *boost::unit_test::precondition(maker_available))

BOOST_AUTO_TEST_CASE(shapes_and_tokenizer_are_the_requested_ones) {
  GgufFile const file = GgufFile::open(tiny_model("q4_0"));
  LlamaModel const model(file);
  LlamaConfig const& c = model.config();
  BOOST_TEST(c.n_layers == 2);
  BOOST_TEST(c.n_embd == 256);
  BOOST_TEST(c.n_ff == 512);
  BOOST_TEST(c.n_heads == 4);
  BOOST_TEST(c.n_kv_heads == 2);  // grouped-query attention
  BOOST_TEST(!model.tied_embeddings());

  // The default model's tokenizer: same vocabulary (embedding and output sized to it), same
  // encoding, same chat template.
  GgufFile const reference = GgufFile::open(engine_test::model_path());
  Tokenizer const ours = tokenizer_from_gguf(file), theirs = tokenizer_from_gguf(reference);
  BOOST_TEST(c.vocab == theirs.vocab_size());
  BOOST_TEST(model.output().rows == theirs.vocab_size());
  std::string const text = "The printing press changed Europe, 1450-1500.";
  BOOST_TEST(ours.encode(text, true) == theirs.encode(text, true));
  BOOST_TEST(ours.chat_template() == theirs.chat_template());
}

BOOST_AUTO_TEST_CASE(pure_types_write_every_matrix_in_that_type) {
  for (std::string const type : {"q4_0", "q8_0"}) {
    GgufFile const file = GgufFile::open(tiny_model(type));
    std::string const expected = type == "q4_0" ? "Q4_0" : "Q8_0";
    for (TensorInfo const& t : file.tensors()) {
      bool const norm = t.name.find("norm") != std::string::npos;
      BOOST_TEST(std::string(type_name(t.type)) == (norm ? "F32" : expected), t.name);
    }
  }
}

BOOST_AUTO_TEST_CASE(q4_k_m_keeps_more_bits_where_llama_cpp_does) {
  // llama.cpp's Q4_K_M: Q6_K for the output head and for attn_v/ffn_down of its use_more_bits
  // layers (of 2 layers: layer 1 only); Q4_K elsewhere.
  GgufFile const file = GgufFile::open(tiny_model("q4_k_m"));
  BOOST_TEST(type_of(file, "output.weight") == "Q6_K");
  BOOST_TEST(type_of(file, "token_embd.weight") == "Q4_K");
  BOOST_TEST(type_of(file, "blk.0.attn_v.weight") == "Q4_K");
  BOOST_TEST(type_of(file, "blk.0.ffn_down.weight") == "Q4_K");
  BOOST_TEST(type_of(file, "blk.1.attn_v.weight") == "Q6_K");
  BOOST_TEST(type_of(file, "blk.1.ffn_down.weight") == "Q6_K");
  BOOST_TEST(type_of(file, "blk.1.ffn_up.weight") == "Q4_K");
  BOOST_TEST(type_of(file, "blk.1.attn_q.weight") == "Q4_K");
}

BOOST_AUTO_TEST_CASE(every_type_decodes_to_finite_varied_logits) {
  ThreadPool pool{1};
  for (std::string const type : {"q4_0", "q8_0", "q4_k_m"}) {
    BOOST_TEST_CONTEXT("type " << type) {
      GgufFile const file = GgufFile::open(tiny_model(type));
      LlamaModel const model(file);
      Tokenizer const tokenizer = tokenizer_from_gguf(file);
      Generator gen(model, pool, {}, 64);
      std::vector<std::int32_t> const prompt = tokenizer.encode("Hello, world", true);
      std::span<float const> logits = gen.prefill(prompt);
      std::mt19937_64 rng(0);
      std::int32_t const next = sample(logits, {}, rng);  // throws on NaN or Inf
      logits = gen.decode(next);
      float lo = logits[0], hi = logits[0];
      for (float const x : logits) {
        BOOST_TEST_REQUIRE(std::isfinite(x));
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
      // Weights of RMS ~ 1/sqrt(cols): logits of order 1, neither collapsed nor exploding.
      BOOST_TEST(hi - lo > 0.1f);
      BOOST_TEST(hi - lo < 1000.0f);
    }
  }
}

BOOST_AUTO_TEST_CASE(skipllm_info_describes_the_file, *boost::unit_test::precondition(engine_test::cli_available)) {
  engine_test::RunResult const r = engine_test::run_cli({"info", "-m", tiny_model("q4_k_m").string()});
  BOOST_TEST(r.status == 0, r.err);
  BOOST_TEST(r.out.find("layers:               2") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("kv heads 2") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("Q6_K") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("49152 tokens") != std::string::npos, r.out);
}

BOOST_AUTO_TEST_CASE(bad_shapes_are_refused) {
  fs::path const out = engine_test::scratch() / "bad.gguf";
  // 3 heads do not divide 256; a row of 200 is no whole number of Q4_K blocks.
  BOOST_TEST(run_maker("--layers 1 --embd 256 --ff 512 --heads 3 -o " + engine_test::shell_quote(out)) != 0);
  BOOST_TEST(run_maker("--layers 1 --embd 200 --ff 512 --heads 4 --type q4_k_m -o " + engine_test::shell_quote(out)) !=
             0);
  BOOST_TEST(!fs::exists(out));
}

BOOST_AUTO_TEST_SUITE_END()
