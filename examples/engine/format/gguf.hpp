//! @file
//! A strict, memory-mapped reader for GGUF v2/v3 model files.
//!
//! GGUF files come from untrusted sources, so the parser validates everything before it trusts
//! it: every count and length against the bytes left in the file (before any allocation), key
//! and tensor-name uniqueness, value types, tensor shapes (product of dims in int64), a whitelist
//! of tensor types, alignment, and that every tensor's bytes lie inside the file without overlap.
//! Memory: the file is mapped; the heap holds only a directory of the entries actually read, and
//! tensor_count and metadata_kv_count are capped at 2^16 each, so a parse allocates at most a
//! fixed budget (about 21 MiB at both caps) whatever the header claims.
//! Anything wrong throws GgufError naming the file, the field and the byte offset. Header fields
//! are read with bounds-checked memcpy; tensor data is left in place in the read-only mapping.
//! Strings and tensor data returned by the accessors point into the mapping: they live as long as
//! the GgufFile. (As with any mmap, truncating the file while it is open is undefined: SIGBUS.)
#pragma once

#include "format/quant.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace skipllm::engine {

//! Any problem with a GGUF file or a lookup in it. The message names the file, the field and,
//! where the field exists in the file, its byte offset.
struct GgufError : std::runtime_error {
  using runtime_error::runtime_error;
};

//! Metadata value types, with the ids GGUF stores.
enum class GgufValueType : std::uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

//! "UINT32", "STRING", ... as in the GGUF spec.
std::string_view value_type_name(GgufValueType type);

//! One tensor, validated: its type is supported, its dims are positive with an int64 product,
//! ne[0] is a multiple of the block size and its bytes lie inside the file.
struct TensorInfo {
  std::string name;
  GgmlType type;
  int n_dims;                      //!< 1..4
  std::array<std::int64_t, 4> ne;  //!< ne[0] is innermost (the row length); unused dims are 1
  std::uint64_t offset;            //!< relative to the start of the data section
  std::uint64_t nbytes;
  std::byte const* data;  //!< points into the file mapping

  std::int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
  std::int64_t row_length() const { return ne[0]; }
  std::size_t row_bytes() const;
};

//! An open GGUF file: validated metadata and tensor directory over a read-only mapping.
//! Move-only (a moved-from GgufFile may only be destroyed or assigned to); all accessors are
//! const and safe to call from several threads.
class GgufFile {
 public:
  //! Maps `path` read-only and validates it. Throws GgufError.
  static GgufFile open(std::filesystem::path const& path);
  //! The same parser over a buffer the GgufFile takes over; `label` stands for the file name in
  //! error messages. For tests and fuzzing.
  static GgufFile from_bytes(std::vector<std::byte> bytes, std::string label);

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  ~GgufFile();

  std::string const& label() const;   //!< the path (or from_bytes label) used in messages
  std::uint32_t version() const;      //!< 2 or 3
  std::uint64_t alignment() const;    //!< general.alignment, or the default 32
  std::uint64_t data_offset() const;  //!< file offset of the data section
  std::uint64_t file_size() const;

  // ---- Metadata. Lookups of a missing key or a value of the wrong type throw GgufError naming
  // the key. Integer getters accept any integer width and refuse values that do not fit.
  bool has(std::string_view key) const;
  std::optional<GgufValueType> value_type(std::string_view key) const;
  //! The element type when `key` holds an array, else std::nullopt.
  std::optional<GgufValueType> array_type(std::string_view key) const;

  std::string_view get_string(std::string_view key) const;
  std::uint64_t get_uint(std::string_view key) const;  //!< any integer type; negative values refused
  std::int64_t get_int(std::string_view key) const;    //!< any integer type; > INT64_MAX refused
  double get_float(std::string_view key) const;        //!< FLOAT32, FLOAT64 or any integer type
  bool get_bool(std::string_view key) const;

  //! std::nullopt when the key is absent; GgufError when present with the wrong type.
  std::optional<std::string_view> find_string(std::string_view key) const;
  std::optional<std::uint64_t> find_uint(std::string_view key) const;
  std::optional<std::int64_t> find_int(std::string_view key) const;
  std::optional<double> find_float(std::string_view key) const;
  std::optional<bool> find_bool(std::string_view key) const;

  //! Arrays are typed strictly, to catch type confusion (e.g. token scores stored as INT8):
  //! string arrays must hold STRING, int arrays any integer type, float arrays FLOAT32/FLOAT64.
  std::vector<std::string_view> get_string_array(std::string_view key) const;
  std::vector<std::int64_t> get_int_array(std::string_view key) const;
  std::vector<double> get_float_array(std::string_view key) const;

  std::vector<std::string> metadata_keys() const;  //!< in file order

  // ---- Tensors, in file order.
  TensorInfo const* find_tensor(std::string_view name) const;  //!< nullptr if absent
  TensorInfo const& tensor(std::string_view name) const;       //!< throws GgufError naming it
  std::span<const TensorInfo> tensors() const;

 private:
  struct Impl;
  explicit GgufFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace skipllm::engine
