// The malformed-GGUF fixture set (reliability.md §1.4 and §6): fixtures/make_malformed_gguf.py
// writes each file and the error its load must produce; every file is loaded here the way the
// CLI loads a model (GgufFile::open, LlamaModel, tokenizer_from_gguf) and must be refused by the
// step, with the error type and the message the manifest names. This executable also counts
// every heap allocation, to show that parsing allocates for the entries it reads, never for the
// counts and lengths a header claims.
#define BOOST_TEST_MODULE engine_gguf_malformed
#include <boost/test/unit_test.hpp>

#include "engine_test_support.hpp"
#include "format/gguf.hpp"
#include "format/tokenizer.hpp"
#include "model/llama_model.hpp"

#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <new>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace eng = skipllm::engine;
namespace fs = std::filesystem;

// ---- Heap accounting ---------------------------------------------------------------------------
// Replaces the global operator new and delete of this executable. malloc_usable_size gives the
// bytes each block really takes, so the count needs no header of its own.

namespace {

std::atomic<std::size_t> live_bytes{0};
std::atomic<std::size_t> peak_bytes{0};

void* counted_new(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  std::size_t const live = live_bytes += malloc_usable_size(p);
  std::size_t peak = peak_bytes.load();
  while (live > peak && !peak_bytes.compare_exchange_weak(peak, live)) {}
  return p;
}

void counted_delete(void* p) noexcept {
  if (p == nullptr) return;
  live_bytes -= malloc_usable_size(p);
  std::free(p);
}

}  // namespace

// Every allocating form whose block may reach these deletes, the nothrow ones included (the
// standard library's temporary buffers use them): under ASan, a block from the sanitizer's own
// operator new must never be freed here.
void* operator new(std::size_t n) { return counted_new(n); }
void* operator new[](std::size_t n) { return counted_new(n); }
void* operator new(std::size_t n, std::nothrow_t const&) noexcept {
  try {
    return counted_new(n);
  } catch (std::bad_alloc const&) { return nullptr; }
}
void* operator new[](std::size_t n, std::nothrow_t const& tag) noexcept { return operator new(n, tag); }
void operator delete(void* p) noexcept { counted_delete(p); }
void operator delete[](void* p) noexcept { counted_delete(p); }
void operator delete(void* p, std::size_t) noexcept { counted_delete(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_delete(p); }
void operator delete(void* p, std::nothrow_t const&) noexcept { counted_delete(p); }
void operator delete[](void* p, std::nothrow_t const&) noexcept { counted_delete(p); }

namespace {

//! The most the heap grew by, from construction to peak(): what one parse allocated at worst.
class HeapGrowth {
 public:
  HeapGrowth() : start_(live_bytes.load()) { peak_bytes = start_; }
  std::size_t peak() const { return peak_bytes.load() - start_; }

 private:
  std::size_t start_;
};

// ---- The fixtures ------------------------------------------------------------------------------

struct Fixture {
  std::string file, kind, stage, error, message;
};

//! The generated files, written once per run into a private folder that is removed at exit.
class FixtureSet {
 public:
  FixtureSet() : dir_(fs::temp_directory_path() / ("skipllm_malformed_gguf_" + std::to_string(::getpid()))) {
    auto const scripts = engine_test::env_path("SKIPLLM_FIXTURES");
    if (!scripts) throw std::runtime_error("SKIPLLM_FIXTURES is not set (ctest sets it)");
    std::string const command =
        "python3 '" + (*scripts / "make_malformed_gguf.py").string() + "' '" + dir_.string() + "' > /dev/null";
    if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command);
    std::ifstream manifest(dir_ / "manifest.tsv");
    std::string line;
    std::getline(manifest, line);  // the column names
    while (std::getline(manifest, line)) {
      std::istringstream row(line);
      Fixture f;
      std::getline(row, f.file, '\t');
      std::getline(row, f.kind, '\t');
      std::getline(row, f.stage, '\t');
      std::getline(row, f.error, '\t');
      std::getline(row, f.message);
      fixtures_.push_back(f);
    }
  }
  FixtureSet(FixtureSet const&) = delete;
  FixtureSet& operator=(FixtureSet const&) = delete;
  ~FixtureSet() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::vector<Fixture> const& fixtures() const { return fixtures_; }
  fs::path path(Fixture const& f) const { return dir_ / f.file; }

 private:
  fs::path dir_;
  std::vector<Fixture> fixtures_;
};

FixtureSet const& fixture_set() {
  static const FixtureSet set;
  return set;
}

//! How far a load got: the step that threw, the error's type and its message ("ok" when none threw).
struct Outcome {
  std::string stage, error, message;
};

Outcome load(fs::path const& path) {
  std::string stage = "gguf";
  try {
    eng::GgufFile const file = eng::GgufFile::open(path);
    stage = "model";
    eng::LlamaModel const model(file);
    stage = "tokenizer";
    eng::tokenizer_from_gguf(file);
    return {"ok", "-", "-"};
  } catch (eng::GgufError const& e) { return {stage, "GgufError", e.what()}; } catch (eng::ModelError const& e) {
    return {stage, "ModelError", e.what()};
  } catch (eng::TokenizerError const& e) {
    return {stage, "TokenizerError", e.what()};
  } catch (std::exception const& e) {  // any other type is a failure of its own, reported by name
    return {stage, "std::exception", e.what()};
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_set_covers_every_class_of_damage) {
  std::map<std::string, int> by_kind;
  int malformed = 0;
  for (Fixture const& f : fixture_set().fixtures()) {
    ++by_kind[f.kind];
    malformed += f.stage != "ok";
  }
  for (auto const& [kind, n] : by_kind) BOOST_TEST_MESSAGE(kind << ": " << n);
  BOOST_TEST_MESSAGE(malformed << " malformed files");
  BOOST_TEST(malformed >= 80);
  for (char const* kind : {"truncation", "huge_count", "huge_length", "dimension_product", "dimensions", "bad_type_id",
                           "alignment", "metadata_type", "metadata_value", "duplicate", "vocabulary", "shape",
                           "missing_tensor", "offset", "memory", "control"}) {
    BOOST_TEST(by_kind[kind] > 0, "no fixture of class " << kind);
  }
}

BOOST_AUTO_TEST_CASE(every_file_is_refused_by_its_step_with_its_message) {
  for (Fixture const& f : fixture_set().fixtures()) {
    BOOST_TEST_CONTEXT(f.file << " (" << f.kind << ")") {
      fs::path const path = fixture_set().path(f);
      Outcome const got = load(path);
      BOOST_TEST_CONTEXT("message: " << got.message) {
        BOOST_TEST(got.stage == f.stage);
        BOOST_TEST(got.error == f.error);
      }
      if (f.stage == "ok") continue;
      BOOST_TEST(got.message.find(f.message) != std::string::npos,
                 "expected \"" << f.message << "\" in \"" << got.message << "\"");
      // The reader and the model name the file first; the tokenizer says it is the tokenizer.
      std::string const prefix = f.error == "TokenizerError" ? "tokenizer: " : path.string() + ": ";
      BOOST_TEST(got.message.starts_with(prefix));
    }
  }
}

BOOST_AUTO_TEST_CASE(parsing_allocates_for_entries_read_never_for_claims) {
  // The file itself is mapped, not allocated. What the parser allocates is its directory of the
  // entries it has actually read, at most 2^16 of each kind: a budget the reader fixes whatever
  // the file's size or its header's claims. The two fixtures with 2^16 real key/value pairs or
  // 2^16 tensors with 63-byte names fill it (measured: 5.7 and 15.3 MiB); every other one reads
  // a few dozen entries at most, however much its header claims.
  constexpr std::size_t directory_budget = std::size_t{24} << 20;
  constexpr std::size_t few_entries_budget = std::size_t{64} << 10;
  for (Fixture const& f : fixture_set().fixtures()) {
    BOOST_TEST_CONTEXT(f.file << " (" << f.kind << ")") {
      HeapGrowth const growth;
      try {
        eng::GgufFile::open(fixture_set().path(f));
      } catch (eng::GgufError const&) {}
      std::size_t const peak = growth.peak();
      if (f.kind == "memory") {
        BOOST_TEST_MESSAGE(f.file << ": " << fs::file_size(fixture_set().path(f)) << " bytes, heap peak while parsing "
                                  << peak << " bytes");
      }
      bool const fills_the_directory = f.file.ends_with("_count_at_the_cap.gguf");
      BOOST_TEST(peak <= (fills_the_directory ? directory_budget : few_entries_budget));
    }
  }
}
