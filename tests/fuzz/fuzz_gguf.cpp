// libFuzzer target: a GGUF file, parsed in memory (GgufFile::from_bytes, the parser open() runs
// over its mapping), then read the way the engine reads it: every metadata value through its
// typed getter, every tensor's bytes, the tokenizer (tokenizer_from_gguf), the model
// configuration and weights (LlamaModel) and a dequantized row of each tensor. Every failure
// must be the reader's own error type; anything else (a crash, a sanitizer report, another
// exception) is a bug.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "format/gguf.hpp"
#include "format/quant.hpp"
#include "format/tokenizer.hpp"
#include "fuzz_support.hpp"
#include "model/llama_model.hpp"

namespace {

using namespace skipllm::engine;
using skipllm::fuzz::require;

// Reads `key` with the getter its type calls for; a wrong-typed getter must refuse, not misread.
void read_value(GgufFile const& file, std::string const& key) {
  std::optional<GgufValueType> const type = file.value_type(key);
  require(type.has_value(), "metadata_keys() lists a key value_type() does not know");
  try {
    switch (*type) {
      case GgufValueType::STRING: (void)file.get_string(key); break;
      case GgufValueType::BOOL: (void)file.get_bool(key); break;
      case GgufValueType::FLOAT32:
      case GgufValueType::FLOAT64: (void)file.get_float(key); break;
      case GgufValueType::ARRAY:
        (void)file.array_type(key);
        (void)file.get_string_array(key);
        break;
      default:
        (void)file.get_int(key);
        (void)file.get_uint(key);
        break;
    }
  } catch (GgufError const&) {  // e.g. a negative value read as unsigned
  }
  for (auto const &read : {+[](GgufFile const&f, std::string const&k) { (void)f.get_int_array(k); },
                           +[](GgufFile const&f, std::string const&k) { (void)f.get_float_array(k); },
                           +[](GgufFile const&f, std::string const&k) { (void)f.find_string(k); }}) {
    try {
      read(file, key);
    } catch (GgufError const&) {}
  }
}

// Touches the first and last byte of every tensor (ASan checks they are inside the buffer) and
// dequantizes its first row and takes its dot product (the matvec's inner loop).
void read_tensors(GgufFile const& file) {
  std::vector<float> row, ones;
  for (TensorInfo const& t : file.tensors()) {
    require(file.find_tensor(t.name) == &t, "find_tensor() does not find a listed tensor");
    require(t.nbytes > 0 && t.data != nullptr, "a tensor without bytes");
    volatile std::byte sink = t.data[0];
    sink = t.data[t.nbytes - 1];
    (void)sink;
    require(static_cast<std::uint64_t>(t.rows()) * t.row_bytes() == t.nbytes, "rows * row_bytes != nbytes");
    if (t.row_length() <= (std::int64_t{1} << 16)) {
      std::size_t const n = static_cast<std::size_t>(t.row_length());
      row.resize(n);
      dequantize_row(t.type, t.data, row.data(), t.row_length());
      ones.resize(n, 1.0f);
      (void)dot_row(t.type, t.data, ones.data(), t.row_length());
    }
  }
}

void use_tokenizer(GgufFile const& file) {
  try {
    Tokenizer const tokenizer = tokenizer_from_gguf(file);
    std::vector<std::int32_t> const ids = tokenizer.encode("Hello, world! 123 <|im_start|>user\nçé😀", true);
    for (std::int32_t const id : ids) require(id >= 0 && id < tokenizer.vocab_size(), "encode() gave a bad id");
    (void)tokenizer.decode(ids);
  } catch (GgufError const&) {
  } catch (TokenizerError const&) {}
}

void use_model(GgufFile const& file) {
  try {
    LlamaModel const model(file);
    (void)model.bytes_per_token_dense();
  } catch (GgufError const&) {
  } catch (ModelError const&) {}
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  std::vector<std::byte> bytes(size);
  std::copy_n(reinterpret_cast<std::byte const*>(data), size, bytes.begin());
  try {
    GgufFile const file = GgufFile::from_bytes(std::move(bytes), "fuzz.gguf");
    require(file.data_offset() <= file.file_size(), "data section starts past the end");
    for (std::string const& key : file.metadata_keys()) read_value(file, key);
    read_tensors(file);
    use_tokenizer(file);
    use_model(file);
  } catch (GgufError const&) {}
  return 0;
}
