// Tests of the GGUF reader: a well-formed file read back field by field, one forged corruption per
// class of malformed input (reliability.md §1.4 and §6), and the real SmolLM2 model when present.
#define BOOST_TEST_MODULE engine_gguf
#include <boost/test/unit_test.hpp>

#include "engine_test_support.hpp"
#include "format/gguf.hpp"
#include "format/quant.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace eng = skipllm::engine;
using eng::GgmlType;
using eng::GgufError;
using eng::GgufFile;

namespace {

constexpr std::uint64_t u64_max = ~std::uint64_t{0};

// ---- A GGUF writer for forging files ---------------------------------------------------------

// Little-endian bytes, written exactly as told: no field is computed or checked, so a test can
// put any value anywhere.
class Bytes {
 public:
  template <class T>
  Bytes& put(T v) {
    auto const* p = reinterpret_cast<std::byte const*>(&v);
    data_.insert(data_.end(), p, p + sizeof v);
    return *this;
  }
  Bytes& u8(std::uint8_t v) { return put(v); }
  Bytes& u32(std::uint32_t v) { return put(v); }
  Bytes& u64(std::uint64_t v) { return put(v); }
  Bytes& raw(std::string_view s) {
    for (char const c : s) data_.push_back(static_cast<std::byte>(c));
    return *this;
  }
  Bytes& str(std::string_view s) { return u64(s.size()).raw(s); }  // GGUF string: u64 length + bytes
  Bytes& append(Bytes const& other) {
    data_.insert(data_.end(), other.data_.begin(), other.data_.end());
    return *this;
  }
  Bytes& zeros(std::size_t n) {
    data_.resize(data_.size() + n);
    return *this;
  }
  std::size_t size() const { return data_.size(); }
  std::vector<std::byte> const& data() const { return data_; }

 private:
  std::vector<std::byte> data_;
};

// GGUF value type ids (written raw, so tests can also write invalid ones).
enum Vt : std::uint32_t {
  U8 = 0,
  I8 = 1,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STR = 8,
  ARR = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12
};

struct Kv {
  std::string key;
  std::uint32_t type;
  Bytes value;
};

Kv kv_u32(std::string k, std::uint32_t v) { return {std::move(k), U32, Bytes().u32(v)}; }
Kv kv_i32(std::string k, std::int32_t v) { return {std::move(k), I32, Bytes().put(v)}; }
Kv kv_u64(std::string k, std::uint64_t v) { return {std::move(k), U64, Bytes().u64(v)}; }
Kv kv_f32(std::string k, float v) { return {std::move(k), F32, Bytes().put(v)}; }
Kv kv_bool(std::string k, bool v) { return {std::move(k), BOOL, Bytes().u8(v ? 1 : 0)}; }
Kv kv_str(std::string k, std::string_view v) { return {std::move(k), STR, Bytes().str(v)}; }
Kv kv_strs(std::string k, std::vector<std::string> const& v) {
  Bytes b;
  b.u32(STR).u64(v.size());
  for (auto const& s : v) b.str(s);
  return {std::move(k), ARR, b};
}
template <class T>
Kv kv_array(std::string k, std::uint32_t element_type, std::vector<T> const& v) {
  Bytes b;
  b.u32(element_type).u64(v.size());
  for (const T& x : v) b.put(x);
  return {std::move(k), ARR, b};
}

struct Tensor {
  std::string name;
  std::vector<std::uint64_t> ne;
  std::uint32_t type;
  std::optional<std::uint64_t> offset = std::nullopt;  // default: packed after the previous one
};

// Block geometry, written out here rather than taken from the library under test.
std::uint64_t tensor_bytes(Tensor const& t) {
  static const std::map<std::uint32_t, std::pair<std::uint64_t, std::uint64_t>> geometry{
      {0, {1, 4}},   {1, {1, 2}},      {2, {32, 18}},    {3, {32, 20}},    {6, {32, 22}}, {7, {32, 24}},
      {8, {32, 34}}, {12, {256, 144}}, {13, {256, 176}}, {14, {256, 210}}, {30, {1, 2}}};
  auto const it = geometry.find(t.type);
  if (it == geometry.end() || t.ne.empty()) return 0;
  std::uint64_t n = 1;
  for (const std::uint64_t d : t.ne) n *= d;
  return n / it->second.first * it->second.second;
}

std::uint64_t pad(std::uint64_t n, std::uint64_t a) { return (n + a - 1) / a * a; }

// A whole file described by its fields; build() lays it out the way llama.cpp writes files.
struct Spec {
  std::uint32_t version = 3;
  std::vector<Kv> kvs;
  std::vector<Tensor> tensors;
  std::uint64_t alignment = 32;                         // for laying out; add general.alignment to kvs to declare it
  std::optional<std::uint64_t> tensor_count, kv_count;  // header overrides

  // Everything before the padding: header, key/value pairs, tensor infos.
  Bytes head(std::uint64_t* data_end = nullptr) const {
    Bytes b;
    b.raw("GGUF").u32(version).u64(tensor_count.value_or(tensors.size())).u64(kv_count.value_or(kvs.size()));
    for (Kv const& kv : kvs) b.str(kv.key).u32(kv.type).append(kv.value);
    std::uint64_t next = 0, end = 0;
    for (Tensor const& t : tensors) {
      const std::uint64_t offset = t.offset.value_or(next);
      b.str(t.name).u32(static_cast<std::uint32_t>(t.ne.size()));
      for (const std::uint64_t d : t.ne) b.u64(d);
      b.u32(t.type).u64(offset);
      next = pad(offset + tensor_bytes(t), alignment);
      if (tensor_bytes(t) < (std::uint64_t{1} << 20))
        end = std::max(end, offset + tensor_bytes(t));  // skip absurd sizes
    }
    if (data_end != nullptr) *data_end = end;
    return b;
  }

  std::vector<std::byte> build() const {
    std::uint64_t data_end = 0;
    Bytes b = head(&data_end);
    b.zeros(pad(b.size(), alignment) - b.size());
    for (std::uint64_t i = 0; i < data_end; ++i)
      b.u8(static_cast<std::uint8_t>(i * 7 + 1));  // no padding after the last
    return b.data();
  }
};

// A small well-formed llama-like file: every metadata value type the engine reads, and tensors
// of several types with sizes that need padding between them.
Spec small_model() {
  Spec s;
  s.kvs = {kv_str("general.architecture", "llama"),
           kv_str("general.name", "tiny"),
           kv_u32("llama.block_count", 1),
           kv_u64("llama.context_length", 256),
           kv_f32("llama.rope.freq_base", 10000.0f),
           kv_bool("tokenizer.ggml.add_bos_token", false),
           kv_i32("test.negative", -5),
           kv_u64("test.huge", (std::uint64_t{1} << 63) + 1),
           {"test.u8", U8, Bytes().u8(200)},
           {"test.f64", F64, Bytes().put(2.5)},
           kv_strs("tokenizer.ggml.tokens", {"<unk>", "a", "b c"}),
           kv_array<std::int32_t>("tokenizer.ggml.token_type", I32, {2, 1, -1}),
           kv_array<float>("tokenizer.ggml.scores", F32, {0.0f, -1.5f, 2.0f}),
           kv_array<std::int8_t>("test.i8_array", I8, {-3, 4}),
           kv_array<std::uint8_t>("test.bools", BOOL, {1, 0, 1})};
  s.tensors = {{"token_embd.weight", {64, 3}, 8},
               {"blk.0.attn_norm.weight", {64}, 0},
               {"blk.0.ffn_up.weight", {64, 5}, 3},
               {"blk.0.ffn_down.weight", {256, 2}, 12},
               {"output_norm.weight", {8, 1, 1, 1}, 1}};
  return s;
}

// Parses `bytes` and requires a GgufError that names the file and contains `needle`.
void expect_error(std::vector<std::byte> const& bytes, std::string_view needle, bool needs_offset = true) {
  try {
    GgufFile::from_bytes(bytes, "forged.gguf");
    BOOST_ERROR("the file parsed; expected an error containing \"" << needle << "\"");
  } catch (GgufError const& e) {
    const std::string_view msg = e.what();
    BOOST_TEST_INFO("message: " << msg);
    BOOST_TEST(msg.find(needle) != std::string_view::npos);
    BOOST_TEST(msg.starts_with("forged.gguf: "));
    if (needs_offset) BOOST_TEST(msg.find("(at byte ") != std::string_view::npos);
  }
}

void expect_error(Spec const& spec, std::string_view needle) { expect_error(spec.build(), needle); }

// The header (magic, version, counts) followed by whatever a test appends.
Bytes header(std::uint64_t n_tensors, std::uint64_t n_kv) {
  return Bytes().raw("GGUF").u32(3).u64(n_tensors).u64(n_kv);
}

template <class F>
void expect_lookup_error(F&& lookup, std::string_view needle) {
  try {
    lookup();
    BOOST_ERROR("lookup succeeded; expected an error containing \"" << needle << "\"");
  } catch (GgufError const& e) {
    BOOST_TEST_INFO("message: " << e.what());
    BOOST_TEST(std::string_view(e.what()).find(needle) != std::string_view::npos);
  }
}

}  // namespace

// ---- Well-formed files -----------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(well_formed)

BOOST_AUTO_TEST_CASE(metadata_reads_back_with_every_getter) {
  const GgufFile f = GgufFile::from_bytes(small_model().build(), "tiny.gguf");
  BOOST_TEST(f.version() == 3u);
  BOOST_TEST(f.alignment() == 32u);
  BOOST_TEST(f.label() == "tiny.gguf");
  BOOST_TEST(f.get_string("general.architecture") == "llama");
  BOOST_TEST(f.get_uint("llama.block_count") == 1u);
  BOOST_TEST(f.get_uint("llama.context_length") == 256u);
  BOOST_TEST(f.get_int("test.negative") == -5);
  BOOST_TEST(f.get_uint("test.u8") == 200u);
  BOOST_TEST(f.get_float("llama.rope.freq_base") == 10000.0);
  BOOST_TEST(f.get_float("test.f64") == 2.5);
  BOOST_TEST(f.get_float("llama.block_count") == 1.0);  // integers are accepted as numbers
  BOOST_TEST(f.get_float("test.negative") == -5.0);
  BOOST_TEST(f.get_bool("tokenizer.ggml.add_bos_token") == false);
  BOOST_TEST(f.get_uint("test.huge") == (std::uint64_t{1} << 63) + 1);

  auto const tokens = f.get_string_array("tokenizer.ggml.tokens");
  BOOST_TEST(tokens == (std::vector<std::string_view>{"<unk>", "a", "b c"}), boost::test_tools::per_element());
  BOOST_TEST(f.get_int_array("tokenizer.ggml.token_type") == (std::vector<std::int64_t>{2, 1, -1}),
             boost::test_tools::per_element());
  BOOST_TEST(f.get_int_array("test.i8_array") == (std::vector<std::int64_t>{-3, 4}), boost::test_tools::per_element());
  BOOST_TEST(f.get_float_array("tokenizer.ggml.scores") == (std::vector<double>{0.0, -1.5, 2.0}),
             boost::test_tools::per_element());

  BOOST_TEST(f.has("general.name"));
  BOOST_TEST(!f.has("general.nope"));
  BOOST_TEST(!f.find_uint("general.nope").has_value());
  BOOST_TEST(!f.find_string("general.nope").has_value());
  BOOST_TEST((f.find_bool("tokenizer.ggml.add_bos_token") == std::optional<bool>(false)));
  BOOST_TEST((f.value_type("general.name") == eng::GgufValueType::STRING));
  BOOST_TEST((f.array_type("tokenizer.ggml.tokens") == eng::GgufValueType::STRING));
  BOOST_TEST(!f.array_type("general.name").has_value());
  auto const keys = f.metadata_keys();
  BOOST_TEST(keys.size() == small_model().kvs.size());
  BOOST_TEST(keys.front() == "general.architecture");
  BOOST_TEST(keys.back() == "test.bools");
}

BOOST_AUTO_TEST_CASE(tensor_directory_points_at_the_right_bytes) {
  const std::vector<std::byte> bytes = small_model().build();
  const GgufFile f = GgufFile::from_bytes(bytes, "tiny.gguf");
  BOOST_TEST(f.tensors().size() == 5u);
  BOOST_TEST(f.data_offset() % 32 == 0u);

  eng::TensorInfo const& up = f.tensor("blk.0.ffn_up.weight");
  BOOST_TEST(up.name == "blk.0.ffn_up.weight");
  BOOST_TEST((up.type == GgmlType::Q4_1));
  BOOST_TEST(up.n_dims == 2);
  BOOST_TEST(up.ne == (std::array<std::int64_t, 4>{64, 5, 1, 1}), boost::test_tools::per_element());
  BOOST_TEST(up.rows() == 5);
  BOOST_TEST(up.row_length() == 64);
  BOOST_TEST(up.row_bytes() == 40u);
  BOOST_TEST(up.nbytes == 200u);
  // Tensors are packed with padding: token_embd 204 B -> 224, attn_norm 256 B -> ffn_up at 480.
  BOOST_TEST(up.offset == 480u);
  for (eng::TensorInfo const& t : f.tensors()) {
    BOOST_TEST(t.offset % 32 == 0u);
    // The pointer is into the parser's own copy, at the same position as in `bytes`.
    BOOST_TEST(std::memcmp(t.data, bytes.data() + f.data_offset() + t.offset, t.nbytes) == 0);
  }
  BOOST_TEST(f.tensor("output_norm.weight").n_dims == 4);
  BOOST_TEST(f.find_tensor("nope") == nullptr);
}

BOOST_AUTO_TEST_CASE(version_2_and_custom_alignments_are_accepted) {
  Spec s = small_model();
  s.version = 2;
  BOOST_TEST(GgufFile::from_bytes(s.build(), "v2").version() == 2u);
  for (const std::uint32_t a : {1u, 8u, 64u, 4096u}) {
    Spec aligned = small_model();
    aligned.alignment = a;
    aligned.kvs.push_back(kv_u32("general.alignment", a));
    const GgufFile f = GgufFile::from_bytes(aligned.build(), "aligned");
    BOOST_TEST(f.alignment() == a);
    BOOST_TEST(f.data_offset() % a == 0u);
  }
}

BOOST_AUTO_TEST_CASE(limits_that_are_exactly_met_are_accepted) {
  Spec s = small_model();
  s.tensors.push_back({std::string(63, 'n'), {32}, 0});  // the longest name ggml allows
  s.kvs.push_back(kv_str(std::string(1000, 'k'), ""));   // an empty string value
  const GgufFile f = GgufFile::from_bytes(s.build(), "limits");
  BOOST_TEST(f.find_tensor(std::string(63, 'n')) != nullptr);
  BOOST_TEST(f.get_string(std::string(1000, 'k')).empty());
}

BOOST_AUTO_TEST_CASE(a_file_without_tensors_or_metadata_is_valid) {
  const GgufFile f = GgufFile::from_bytes(header(0, 0).data(), "empty");
  BOOST_TEST(f.tensors().empty());
  BOOST_TEST(f.metadata_keys().empty());
}

BOOST_AUTO_TEST_CASE(moving_keeps_pointers_valid) {
  GgufFile a = GgufFile::from_bytes(small_model().build(), "tiny.gguf");
  std::byte const* data = a.tensor("token_embd.weight").data;
  const std::string_view name = a.get_string("general.name");
  GgufFile b = std::move(a);
  BOOST_TEST(b.tensor("token_embd.weight").data == data);
  BOOST_TEST(b.get_string("general.name") == name);
  BOOST_TEST(b.get_string("general.name") == "tiny");
}

BOOST_AUTO_TEST_CASE(open_maps_a_real_file) {
  const std::vector<std::byte> bytes = small_model().build();
  auto const path =
      std::filesystem::temp_directory_path() / ("skipllm_test_gguf_" + std::to_string(::getpid()) + ".gguf");
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<char const*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  {
    const GgufFile f = GgufFile::open(path);
    BOOST_TEST(f.label() == path.string());
    BOOST_TEST(f.file_size() == bytes.size());
    eng::TensorInfo const& t = f.tensor("blk.0.ffn_down.weight");
    BOOST_TEST(std::memcmp(t.data, bytes.data() + f.data_offset() + t.offset, t.nbytes) == 0);
  }
  std::filesystem::remove(path);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Lookups ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(lookups)

BOOST_AUTO_TEST_CASE(missing_keys_and_tensors_are_named) {
  const GgufFile f = GgufFile::from_bytes(small_model().build(), "tiny.gguf");
  expect_lookup_error([&] { f.get_uint("llama.embedding_length"); },
                      "tiny.gguf: metadata key llama.embedding_length is missing");
  expect_lookup_error([&] { f.get_string_array("tokenizer.ggml.merges"); }, "tokenizer.ggml.merges is missing");
  expect_lookup_error([&] { f.tensor("output.weight"); }, "tiny.gguf: tensor output.weight is missing");
}

BOOST_AUTO_TEST_CASE(a_model_missing_a_tensor_gives_a_clear_error) {
  Spec s = small_model();
  std::erase_if(s.tensors, [](Tensor const& t) { return t.name == "blk.0.ffn_down.weight"; });
  const GgufFile f = GgufFile::from_bytes(s.build(), "no_ffn_down.gguf");
  BOOST_TEST(f.find_tensor("blk.0.ffn_down.weight") == nullptr);
  expect_lookup_error([&] { f.tensor("blk.0.ffn_down.weight"); },
                      "no_ffn_down.gguf: tensor blk.0.ffn_down.weight is missing (the file has 4 tensors)");
}

BOOST_AUTO_TEST_CASE(wrong_types_are_refused_with_the_key_and_offset) {
  const GgufFile f = GgufFile::from_bytes(small_model().build(), "tiny.gguf");
  expect_lookup_error([&] { f.get_uint("general.name"); },
                      "metadata key general.name has type STRING, expected an unsigned integer");
  expect_lookup_error([&] { f.get_uint("general.name"); }, "(at byte ");
  expect_lookup_error([&] { f.get_uint("test.negative"); }, "test.negative is negative (-5)");
  expect_lookup_error([&] { f.get_int("test.huge"); }, "test.huge value 9223372036854775809 exceeds INT64_MAX");
  expect_lookup_error([&] { f.get_string("llama.block_count"); }, "llama.block_count has type UINT32, expected STRING");
  expect_lookup_error([&] { f.get_float("general.name"); }, "expected a number");
  expect_lookup_error([&] { f.get_bool("test.u8"); }, "test.u8 has type UINT8, expected BOOL");
  expect_lookup_error([&] { f.get_float("tokenizer.ggml.tokens"); }, "has type an array of STRING");
  // Arrays are typed strictly: the type confusions of llama.cpp's vocab CVEs are refused.
  expect_lookup_error([&] { f.get_string_array("tokenizer.ggml.token_type"); },
                      "an array of INT32, expected an array of STRING");
  expect_lookup_error([&] { f.get_int_array("tokenizer.ggml.scores"); },
                      "an array of FLOAT32, expected an array of integers");
  expect_lookup_error([&] { f.get_float_array("test.i8_array"); },
                      "an array of INT8, expected an array of FLOAT32 or FLOAT64");
  expect_lookup_error([&] { f.get_int_array("general.name"); }, "has type STRING");
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Malformed files -------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(malformed)

BOOST_AUTO_TEST_CASE(truncation_at_every_byte_is_an_error) {
  const std::vector<std::byte> full = small_model().build();
  for (std::size_t cut = 0; cut < full.size(); ++cut) {
    BOOST_TEST_CONTEXT("file cut to " << cut << " of " << full.size() << " bytes") {
      expect_error(std::vector<std::byte>(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(cut)),
                   "forged.gguf");
    }
  }
}

namespace {

// Reads every value with the getter its type calls for and dequantizes every tensor's first row,
// so that whatever the parser accepted is also safe to use.
void read_everything(GgufFile const& f) {
  using eng::GgufValueType;
  for (std::string const& key : f.metadata_keys()) {
    const GgufValueType type = *f.value_type(key);
    if (type == GgufValueType::STRING) {
      f.get_string(key);
    } else if (type == GgufValueType::BOOL) {
      f.get_bool(key);
    } else if (type == GgufValueType::ARRAY) {
      const GgufValueType element = *f.array_type(key);
      if (element == GgufValueType::STRING)
        f.get_string_array(key);
      else if (element == GgufValueType::FLOAT32 || element == GgufValueType::FLOAT64)
        f.get_float_array(key);
      else if (element != GgufValueType::BOOL)
        f.get_int_array(key);
    } else {
      f.get_float(key);
    }
  }
  std::vector<float> row;
  for (eng::TensorInfo const& t : f.tensors()) {
    BOOST_TEST(t.offset + t.nbytes <= f.file_size() - f.data_offset());
    row.resize(static_cast<std::size_t>(t.row_length()));
    eng::dequantize_row(t.type, t.data, row.data(), t.row_length());
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(random_corruptions_fail_cleanly) {
  // Flipped bytes anywhere (counts, lengths, types, dims, offsets) must give a parse or a
  // GgufError, never another exception; under ASan/UBSan this is also a memory-safety check.
  const std::vector<std::byte> valid = small_model().build();
  std::mt19937 rng(7);
  int parsed = 0, refused = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<std::byte> bytes = valid;
    for (int k = 1 + static_cast<int>(rng() % 4); k > 0; --k) {
      const std::size_t at = rng() % bytes.size();
      bytes[at] = rng() % 4 == 0 ? std::byte{0xFF} : static_cast<std::byte>(rng() & 0xFF);
    }
    try {
      read_everything(GgufFile::from_bytes(std::move(bytes), "fuzzed.gguf"));
      ++parsed;
    } catch (GgufError const&) { ++refused; }
  }
  BOOST_TEST_MESSAGE("random corruptions: " << parsed << " parsed, " << refused << " refused");
  BOOST_TEST(refused > 0);
}

BOOST_AUTO_TEST_CASE(bad_magic) {
  for (char const* magic : {"GGML", "GGJT", "FUGG", "gguf", "\0\0\0\0"}) {
    Bytes b;
    b.raw(std::string_view(magic, 4)).u32(3).u64(0).u64(0);
    expect_error(b.data(), "bad magic");
  }
  expect_error(Bytes().raw("GG").data(), "magic");
}

BOOST_AUTO_TEST_CASE(bad_versions) {
  for (const std::uint32_t v : {0u, 1u, 4u, 0xFFFFFFFFu}) {
    Spec s = small_model();
    s.version = v;
    expect_error(s, "GGUF version " + std::to_string(v) + " is not supported");
  }
  Spec swapped = small_model();
  swapped.version = 0x03000000;  // a big-endian v3
  expect_error(swapped, "byte-swapped");
}

BOOST_AUTO_TEST_CASE(counts_too_large_for_the_file) {
  // Huge counts must be refused before anything is reserved: no bad_alloc, no long loop.
  for (const std::uint64_t n : {std::uint64_t{1} << 60, std::uint64_t{1} << 63, u64_max, std::uint64_t{1000000}}) {
    Spec t = small_model();
    t.tensor_count = n;
    expect_error(t, "tensor_count " + std::to_string(n) + " cannot fit");
    Spec k = small_model();
    k.kv_count = n;
    expect_error(k, "metadata_kv_count " + std::to_string(n) + " cannot fit");
  }
  Spec more = small_model();
  more.kv_count = more.kvs.size() + 1;  // plausible, but the next "key" is the tensor infos
  expect_error(more, "forged.gguf");
}

BOOST_AUTO_TEST_CASE(string_lengths_past_the_end) {
  expect_error(header(0, 1).u64(u64_max).zeros(16).data(), "key of metadata entry 0 has length 18446744073709551615");
  expect_error(header(0, 1).u64(1000).raw("abcdefghijklmnop").data(), "key of metadata entry 0 has length 1000");
  expect_error(header(0, 1).str("general.name").u32(STR).u64(std::uint64_t{1} << 62).raw("xx").data(),
               "value of key general.name has length 4611686018427387904");
}

BOOST_AUTO_TEST_CASE(bad_keys) {
  expect_error(header(0, 1).str("").u32(U8).u8(0).zeros(8).data(), "key of metadata entry 0 is empty");
  expect_error(header(0, 1).str("bad\nkey").u32(U8).u8(0).data(),
               "key bad\\x0akey contains a control or non-ASCII byte");
  expect_error(header(0, 1).str(std::string(65536, 'k')).u32(U8).u8(0).data(), "is longer than 65535 bytes");
  Spec dup = small_model();
  dup.kvs.push_back(kv_u32("general.architecture", 7));  // same key, another type
  expect_error(dup, "duplicate key general.architecture");
}

BOOST_AUTO_TEST_CASE(bad_value_types) {
  for (const std::uint32_t t : {13u, 255u, 0xFFFFFFFFu, 0x7FFFFFFFu})
    expect_error(header(0, 1).str("k").u32(t).u64(0).data(),
                 "value type of key k " + std::to_string(t) + " is invalid");
  expect_error(header(0, 1).str("k").u32(ARR).u32(13).u64(0).data(),
               "array element type of value of key k 13 is invalid");
  expect_error(header(0, 1).str("k").u32(ARR).u32(ARR).u64(0).data(), "nested arrays are not supported");
}

BOOST_AUTO_TEST_CASE(array_counts_past_the_end) {
  for (const std::uint64_t n : {std::uint64_t{1} << 60, std::uint64_t{1} << 61, u64_max, std::uint64_t{3}})
    expect_error(header(0, 1).str("k").u32(ARR).u32(U32).u64(n).u32(1).u32(2).data(),
                 "array count " + std::to_string(n) + " of value of key k cannot fit");
  // Strings take at least their 8-byte length: 4 strings cannot fit in 24 bytes.
  expect_error(header(0, 1).str("k").u32(ARR).u32(STR).u64(4).zeros(24).data(), "array count 4 of value of key k");
  // Enough bytes for the lengths, but the third string runs past the end.
  expect_error(header(0, 1).str("k").u32(ARR).u32(STR).u64(3).str("a").str("b").u64(50).zeros(16).data(),
               "element 2 of value of key k has length 50");
}

BOOST_AUTO_TEST_CASE(bools_must_be_0_or_1) {
  expect_error(header(0, 1).str("b").u32(BOOL).u8(2).data(), "value of key b is a bool with byte value 2");
  expect_error(header(0, 1).str("b").u32(ARR).u32(BOOL).u64(3).u8(1).u8(0).u8(0xFF).data(),
               "element 2 of value of key b is a bool with byte value 255");
}

BOOST_AUTO_TEST_CASE(bad_alignment) {
  for (const std::uint32_t a : {0u, 3u, 13u, 48u, 0x80000000u}) {
    Spec s = small_model();
    s.kvs.push_back(kv_u32("general.alignment", a));
    expect_error(s, "general.alignment " + std::to_string(a) + " is not a power of two in [1, 65536]");
  }
  for (Kv wrong : {kv_u64("general.alignment", 32), kv_i32("general.alignment", 32), kv_str("general.alignment", "32"),
                   kv_array<std::uint32_t>("general.alignment", U32, {32})}) {
    Spec s = small_model();
    s.kvs.push_back(wrong);
    expect_error(s, "general.alignment has type");
  }
}

BOOST_AUTO_TEST_CASE(bad_tensor_names) {
  auto const with = [](Tensor t) {
    Spec s = small_model();
    s.tensors.push_back(std::move(t));
    return s;
  };
  expect_error(with({"", {32}, 0}), "name of tensor 5 is empty");
  expect_error(with({std::string(64, 'n'), {32}, 0}), "is longer than 63 bytes or contains a NUL");
  expect_error(with({std::string("a\0b", 3), {32}, 0}),
               "tensor name a\\x00b is longer than 63 bytes or contains a NUL");
  expect_error(with({"blk.0.ffn_up.weight", {32}, 0}), "duplicate tensor name blk.0.ffn_up.weight");
  expect_error(header(1, 0).u64(u64_max).zeros(64).data(), "name of tensor 0 has length 18446744073709551615");
}

BOOST_AUTO_TEST_CASE(bad_dimensions) {
  auto const with_ne = [](std::vector<std::uint64_t> ne, std::uint32_t type = 0) {
    Spec s = small_model();
    s.tensors.push_back({"t", std::move(ne), type});
    return s;
  };
  expect_error(with_ne({}), "n_dims 0 of tensor t is outside [1, 4]");
  expect_error(with_ne({1, 1, 1, 1, 1}), "n_dims 5 of tensor t is outside [1, 4]");
  expect_error(header(1, 0).str("t").u32(0xFFFFFFFF).zeros(64).data(), "n_dims 4294967295 of tensor t");
  expect_error(with_ne({32, 0}), "ne[1] of tensor t is 0, must be > 0");
  expect_error(with_ne({u64_max}), "ne[0] of tensor t is -1, must be > 0");
  expect_error(with_ne({std::uint64_t{1} << 63}), "ne[0] of tensor t is -9223372036854775808");
  expect_error(with_ne({std::uint64_t{1} << 32, std::uint64_t{1} << 32}),
               "element count of tensor t overflows int64 at ne[1]");
  expect_error(with_ne({std::uint64_t{1} << 62, 2}), "element count of tensor t overflows int64");
  expect_error(with_ne({2, 2, std::uint64_t{1} << 31, std::uint64_t{1} << 31}), "overflows int64 at ne[3]");
}

BOOST_AUTO_TEST_CASE(byte_sizes_that_wrap_or_exceed_the_file) {
  auto const with = [](std::vector<std::uint64_t> ne, std::uint32_t type) {
    Spec s = small_model();
    s.tensors.push_back({"t", std::move(ne), type, 0});
    return s;
  };
  // F32 with 2^62 elements is 2^64 bytes: wraps uint64.
  expect_error(with({std::uint64_t{1} << 62}, 0), "byte size of tensor t overflows uint64");
  // 2^64 - 16 bytes fits uint64 (ggml's GGML_PAD then wrapped it to 0); it must not fit the file.
  expect_error(with({4, (std::uint64_t{1} << 30) - 1, (std::uint64_t{1} << 30) + 1}, 0),
               "data of tensor t (offset 0, 18446744073709551600 bytes) extends past");
  // llama.cpp #27200's Q4_0 proof of concept.
  expect_error(with({5124095576030431008u}, 2), "data of tensor t");
}

BOOST_AUTO_TEST_CASE(unsupported_and_unknown_tensor_types) {
  auto const with_type = [](std::uint32_t type) {
    Spec s = small_model();
    s.tensors.insert(s.tensors.begin() + 2, {"blk.0.ffn_gate.weight", {256, 2}, type});
    return s;
  };
  expect_error(with_type(16), "tensor blk.0.ffn_gate.weight has unsupported type IQ2_XXS (id 16)");
  expect_error(with_type(4), "has unsupported type Q4_2 (id 4)");          // removed from ggml
  expect_error(with_type(36), "has unsupported type IQ4_NL_4_4 (id 36)");  // removed repacked type
  expect_error(with_type(26), "has unsupported type I32 (id 26)");
  expect_error(with_type(10), "has unsupported type Q2_K (id 10)");
  expect_error(with_type(43), "has unknown type (id 43)");
  expect_error(with_type(1000), "has unknown type (id 1000)");
  expect_error(with_type(0xFFFFFFFF), "has unknown type (id 4294967295)");
}

BOOST_AUTO_TEST_CASE(row_length_must_be_a_multiple_of_the_block) {
  Spec q4 = small_model();
  q4.tensors.push_back({"t", {33, 2}, 2});
  expect_error(q4, "row length ne[0] = 33 of tensor t is not a multiple of the Q4_0 block size 32");
  Spec k = small_model();
  k.tensors.push_back({"blk.0.attn_q.weight", {576, 576}, 12});  // the d=576 K-quant trap
  expect_error(k, "row length ne[0] = 576 of tensor blk.0.attn_q.weight is not a multiple of the Q4_K block size 256");
}

BOOST_AUTO_TEST_CASE(bad_offsets) {
  Spec misaligned = small_model();
  misaligned.tensors[1].offset = 224 + 4;
  expect_error(misaligned, "offset 228 of tensor blk.0.attn_norm.weight is not a multiple of the alignment 32");

  Spec past_end = small_model();
  past_end.tensors[0].offset = u64_max - 31;  // aligned, and offset + size wraps uint64
  expect_error(past_end,
               "data of tensor token_embd.weight (offset 18446744073709551584, 204 bytes) extends past the end");

  Spec overlap = small_model();
  overlap.tensors[2].offset = 0;  // on top of token_embd
  expect_error(overlap, "data of tensor blk.0.ffn_up.weight (offset 0) overlaps tensor token_embd.weight");

  Spec inside = small_model();
  inside.tensors[1].offset = 192;  // aligned, but token_embd runs to 204
  expect_error(
      inside,
      "data of tensor blk.0.attn_norm.weight (offset 192) overlaps tensor token_embd.weight (offset 0, 204 bytes)");

  Spec gap = small_model();
  gap.tensors[0].offset = 64;  // gaps are allowed (only llama.cpp insists on packed tensors)
  BOOST_TEST(GgufFile::from_bytes(gap.build(), "gap").tensor("token_embd.weight").offset == 64u);
}

BOOST_AUTO_TEST_CASE(data_section_short_by_one_byte) {
  std::vector<std::byte> bytes = small_model().build();
  bytes.pop_back();
  expect_error(bytes, "data of tensor output_norm.weight");
  expect_error(bytes, "extends past the end of the file");
}

BOOST_AUTO_TEST_CASE(file_ends_inside_the_padding_before_the_data) {
  const Spec s = small_model();
  const std::size_t end_of_infos = s.head().size();
  BOOST_TEST_REQUIRE(end_of_infos % 32 != 0);  // there is padding to cut into
  std::vector<std::byte> bytes = s.build();
  bytes.resize(end_of_infos + 1);
  expect_error(bytes, "file ends inside the padding before the data section");
}

BOOST_AUTO_TEST_CASE(open_reports_unreadable_paths) {
  expect_lookup_error([] { GgufFile::open("/nonexistent/model.gguf"); }, "/nonexistent/model.gguf: cannot open: ");
  expect_lookup_error([] { GgufFile::open(std::filesystem::temp_directory_path()); }, "not a regular file");
  auto const empty = std::filesystem::temp_directory_path() / ("skipllm_empty_" + std::to_string(::getpid()) + ".gguf");
  std::ofstream(empty).close();
  expect_lookup_error([&] { GgufFile::open(empty); }, "file ends inside magic (4 bytes needed, 0 left) (at byte 0)");
  std::filesystem::remove(empty);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- The real model --------------------------------------------------------------------------

namespace {

// |dot_row - exact| relative to sum |w_i x_i|, the scale of the rounding error a float dot makes.
double dot_row_error(eng::TensorInfo const& t, std::int64_t row, std::vector<float> const& x) {
  const std::int64_t n = t.row_length();
  std::vector<float> w(static_cast<std::size_t>(n));
  std::byte const* p = t.data + static_cast<std::size_t>(row) * t.row_bytes();
  eng::dequantize_row(t.type, p, w.data(), n);
  double exact = 0, scale = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    exact += static_cast<double>(w[i]) * x[i];
    scale += std::abs(static_cast<double>(w[i]) * x[i]);
  }
  return std::abs(eng::dot_row(t.type, p, x.data(), n) - exact) / std::max(scale, 1e-30);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(real_model)

BOOST_AUTO_TEST_CASE(smollm2_metadata_and_tensors, *boost::unit_test::precondition(engine_test::model_available)) {
  const GgufFile f = GgufFile::open(engine_test::model_path());
  // Expected values read with the gguf Python package (gguf-py 0.19.0) from the same file.
  BOOST_TEST(f.version() == 3u);
  BOOST_TEST(f.alignment() == 32u);
  BOOST_TEST(f.data_offset() == 1785664u);
  BOOST_TEST(f.metadata_keys().size() == 33u);
  BOOST_TEST(f.get_string("general.architecture") == "llama");
  BOOST_TEST(f.get_uint("llama.block_count") == 30u);
  BOOST_TEST(f.get_uint("llama.context_length") == 8192u);
  BOOST_TEST(f.get_uint("llama.embedding_length") == 576u);
  BOOST_TEST(f.get_uint("llama.feed_forward_length") == 1536u);
  BOOST_TEST(f.get_uint("llama.attention.head_count") == 9u);
  BOOST_TEST(f.get_uint("llama.attention.head_count_kv") == 3u);
  BOOST_TEST(f.get_uint("llama.rope.dimension_count") == 64u);
  BOOST_TEST(f.get_uint("llama.vocab_size") == 49152u);
  BOOST_TEST(f.get_uint("general.file_type") == 3u);  // MOSTLY_Q4_1
  BOOST_TEST(f.get_float("llama.rope.freq_base") == 100000.0);
  BOOST_TEST(f.get_float("llama.attention.layer_norm_rms_epsilon") == static_cast<double>(1e-5f));
  BOOST_TEST(f.get_string("tokenizer.ggml.model") == "gpt2");
  BOOST_TEST(f.get_string("tokenizer.ggml.pre") == "smollm");
  BOOST_TEST(f.get_bool("tokenizer.ggml.add_bos_token") == false);
  BOOST_TEST(f.get_uint("tokenizer.ggml.bos_token_id") == 1u);
  BOOST_TEST(f.get_uint("tokenizer.ggml.eos_token_id") == 2u);
  auto const tokens = f.get_string_array("tokenizer.ggml.tokens");
  BOOST_TEST(tokens.size() == 49152u);
  BOOST_TEST(tokens[1] == "<|im_start|>");
  BOOST_TEST(tokens[2] == "<|im_end|>");
  BOOST_TEST(f.get_string_array("tokenizer.ggml.merges").size() == 48900u);
  BOOST_TEST(f.get_int_array("tokenizer.ggml.token_type").size() == 49152u);

  BOOST_TEST(f.tensors().size() == 272u);
  std::map<GgmlType, int> by_type;
  for (eng::TensorInfo const& t : f.tensors()) ++by_type[t.type];
  BOOST_TEST(by_type[GgmlType::Q4_1] == 210);
  BOOST_TEST(by_type[GgmlType::F32] == 61);
  BOOST_TEST(by_type[GgmlType::Q8_0] == 1);

  eng::TensorInfo const& embd = f.tensor("token_embd.weight");
  BOOST_TEST((embd.type == GgmlType::Q8_0));
  BOOST_TEST(embd.ne == (std::array<std::int64_t, 4>{576, 49152, 1, 1}), boost::test_tools::per_element());
  BOOST_TEST(embd.offset == 0u);
  BOOST_TEST(embd.nbytes == 30081024u);
  BOOST_TEST(f.find_tensor("output.weight") == nullptr);  // tied to token_embd
  expect_lookup_error([&] { f.tensor("output.weight"); }, "tensor output.weight is missing (the file has 272 tensors)");

  // Every layer has its nine tensors with the shapes of reliability.md §4.1.
  const std::map<std::string, std::array<std::int64_t, 2>> shapes{
      {"attn_norm", {576, 1}},   {"attn_q", {576, 576}},      {"attn_k", {576, 192}},
      {"attn_v", {576, 192}},    {"attn_output", {576, 576}}, {"ffn_norm", {576, 1}},
      {"ffn_gate", {576, 1536}}, {"ffn_up", {576, 1536}},     {"ffn_down", {1536, 576}}};
  for (int layer = 0; layer < 30; ++layer) {
    for (auto const& [name, ne] : shapes) {
      const std::string full = "blk." + std::to_string(layer) + "." + name + ".weight";
      BOOST_TEST_CONTEXT(full) {
        eng::TensorInfo const* t = f.find_tensor(full);
        BOOST_TEST_REQUIRE(t != nullptr);
        BOOST_TEST(t->ne[0] == ne[0]);
        BOOST_TEST(t->ne[1] == ne[1]);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(smollm2_rows_dequantize_finite_and_dot_row_agrees,
                     *boost::unit_test::precondition(engine_test::model_available)) {
  const GgufFile f = GgufFile::open(engine_test::model_path());
  std::vector<float> x(1536);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i)) + 0.1f;
  for (eng::TensorInfo const& t : f.tensors()) {
    BOOST_TEST_CONTEXT(t.name << " (" << eng::type_name(t.type) << ")") {
      for (const std::int64_t row : {std::int64_t{0}, t.rows() / 2, t.rows() - 1}) {
        std::vector<float> w(static_cast<std::size_t>(t.row_length()));
        eng::dequantize_row(t.type, t.data + static_cast<std::size_t>(row) * t.row_bytes(), w.data(), t.row_length());
        BOOST_TEST(std::all_of(w.begin(), w.end(), [](float v) { return std::isfinite(v); }));
        BOOST_TEST(dot_row_error(t, row, x) < 1e-5);
      }
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
