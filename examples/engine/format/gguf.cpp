// GGUF v2/v3 reader. Layout: magic "GGUF", u32 version, u64 tensor_count, u64 metadata_kv_count,
// the key/value pairs, the tensor infos, zero padding to the alignment, then the data section.
// Every multi-byte field is little-endian and unaligned.
#include "format/gguf.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <numeric>
#include <system_error>
#include <unordered_map>

namespace skipllm::engine {

namespace {

constexpr std::uint64_t default_alignment = 32;
// ggml accepts any power of two; the cap bounds the padding we skip and covers every page size.
constexpr std::uint64_t max_alignment = std::uint64_t{1} << 16;
constexpr std::size_t max_key_bytes = 65535;       // the spec's limit
constexpr std::size_t max_tensor_name_bytes = 63;  // ggml's GGML_MAX_NAME (64) less the NUL
constexpr std::uint32_t max_dims = 4;
// Caps on tensor_count and metadata_kv_count, so that the directory the parser builds (about 250
// bytes an entry) stays within a fixed budget whatever the file holds. Real models carry a few
// dozen keys and at most a few thousand tensors.
constexpr std::uint64_t max_entries = std::uint64_t{1} << 16;
// The smallest encodings, used to bound counts by the bytes left before anything is allocated.
constexpr std::uint64_t min_kv_bytes = 8 + 1 + 4 + 1;                   // key length, 1-byte key, type, u8
constexpr std::uint64_t min_tensor_info_bytes = 8 + 1 + 4 + 8 + 4 + 8;  // name, n_dims, one dim, type, offset
constexpr std::uint64_t int64_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

using std::to_string;

// A name or key made safe to print: bytes outside printable ASCII become \xNN, long ones are cut.
std::string printable(std::string_view s) {
  constexpr std::size_t max_shown = 96;
  std::string out;
  for (char const c : s.substr(0, max_shown)) {
    auto const u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F) {
      out += c;
    } else {
      constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 0xF];
    }
  }
  if (s.size() > max_shown) out += "...";
  return out;
}

bool is_integer(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8:
    case GgufValueType::INT8:
    case GgufValueType::UINT16:
    case GgufValueType::INT16:
    case GgufValueType::UINT32:
    case GgufValueType::INT32:
    case GgufValueType::UINT64:
    case GgufValueType::INT64: return true;
    default: return false;
  }
}

bool is_float(GgufValueType t) { return t == GgufValueType::FLOAT32 || t == GgufValueType::FLOAT64; }

// Size of a fixed-width value; STRING and ARRAY have none.
std::uint64_t fixed_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8:
    case GgufValueType::INT8:
    case GgufValueType::BOOL: return 1;
    case GgufValueType::UINT16:
    case GgufValueType::INT16: return 2;
    case GgufValueType::UINT32:
    case GgufValueType::INT32:
    case GgufValueType::FLOAT32: return 4;
    case GgufValueType::UINT64:
    case GgufValueType::INT64:
    case GgufValueType::FLOAT64: return 8;
    default: return 0;
  }
}

[[noreturn]] void throw_at(std::string const& label, std::size_t at, std::string const& what) {
  throw GgufError(label + ": " + what + " (at byte " + to_string(at) + ")");
}

// Bounds-checked little-endian reads over the file. Every failure names the field being read.
class Reader {
 public:
  Reader(std::span<const std::byte> data, std::string const& label, std::size_t pos = 0)
      : data_(data), label_(label), pos_(pos) {}

  std::size_t pos() const { return pos_; }
  std::uint64_t remaining() const { return data_.size() - pos_; }

  [[noreturn]] void fail(std::size_t at, std::string const& what) const { throw_at(label_, at, what); }

  template <class T>
  T read(std::string const& field) {
    if (remaining() < sizeof(T))
      fail(pos_, "file ends inside " + field + " (" + to_string(sizeof(T)) + " bytes needed, " +
                     to_string(remaining()) + " left)");
    T value;
    std::memcpy(&value, data_.data() + pos_, sizeof value);
    pos_ += sizeof value;
    return value;
  }

  void skip(std::uint64_t n, std::string const& field) {
    if (n > remaining())
      fail(pos_,
           "file ends inside " + field + " (" + to_string(n) + " bytes needed, " + to_string(remaining()) + " left)");
    pos_ += n;
  }

  // A u64 length then that many bytes. The view points into the file (char may alias any byte).
  std::string_view read_string(std::string const& field) {
    const std::size_t at = pos_;
    const std::uint64_t length = read<std::uint64_t>("length of " + field);
    if (length > remaining())
      fail(at, field + " has length " + to_string(length) + " but only " + to_string(remaining()) +
                   " bytes are left in the file");
    const std::string_view s(reinterpret_cast<char const*>(data_.data() + pos_), length);
    pos_ += length;
    return s;
  }

 private:
  std::span<const std::byte> data_;
  std::string const& label_;
  std::size_t pos_;
};

// Where a tensor info's fields sit in the file, for errors found after the whole directory is read.
struct InfoPos {
  std::size_t name, offset;
};

// Where a metadata value sits in the file; values are decoded on lookup, not stored.
struct KvEntry {
  std::string_view key;
  GgufValueType type;
  GgufValueType element_type;  // arrays only
  std::uint64_t count;         // arrays only
  std::size_t value_pos;       // the value, or an array's first element
};

// An integer value of any GGUF width, widened without loss.
struct WideInt {
  bool negative;
  std::uint64_t bits;  // two's complement when negative
};

WideInt read_int(Reader& r, GgufValueType t, std::string const& field) {
  auto const s = [](std::int64_t v) { return WideInt{v < 0, static_cast<std::uint64_t>(v)}; };
  switch (t) {
    case GgufValueType::UINT8: return {false, r.read<std::uint8_t>(field)};
    case GgufValueType::INT8: return s(r.read<std::int8_t>(field));
    case GgufValueType::UINT16: return {false, r.read<std::uint16_t>(field)};
    case GgufValueType::INT16: return s(r.read<std::int16_t>(field));
    case GgufValueType::UINT32: return {false, r.read<std::uint32_t>(field)};
    case GgufValueType::INT32: return s(r.read<std::int32_t>(field));
    case GgufValueType::UINT64: return {false, r.read<std::uint64_t>(field)};
    default: return s(r.read<std::int64_t>(field));  // INT64: callers pass integer types only
  }
}

double read_float(Reader& r, GgufValueType t, std::string const& field) {
  if (t == GgufValueType::FLOAT32) return r.read<float>(field);
  return r.read<double>(field);
}

}  // namespace

std::string_view value_type_name(GgufValueType type) {
  static constexpr std::array<std::string_view, 13> names{"UINT8",  "INT8",    "UINT16", "INT16",  "UINT32",
                                                          "INT32",  "FLOAT32", "BOOL",   "STRING", "ARRAY",
                                                          "UINT64", "INT64",   "FLOAT64"};
  auto const id = static_cast<std::uint32_t>(type);
  return id < names.size() ? names[id] : std::string_view("invalid");
}

std::size_t TensorInfo::row_bytes() const {
  return static_cast<std::size_t>(ne[0]) / block_size(type) * block_bytes(type);
}

// ---------------------------------------------------------------------------------------------
struct GgufFile::Impl {
  std::string label;
  std::vector<std::byte> owned;  // from_bytes
  void* mapping = nullptr;       // open()
  std::size_t mapping_size = 0;
  std::span<const std::byte> bytes;

  std::uint32_t version = 0;
  std::uint64_t alignment = default_alignment;
  std::uint64_t data_offset = 0;
  std::vector<KvEntry> kvs;
  std::unordered_map<std::string_view, std::size_t> kv_index;  // keys view the mapping
  std::vector<TensorInfo> tensors;
  std::unordered_map<std::string_view, std::size_t> tensor_index;  // keys view TensorInfo::name

  Impl() = default;
  Impl(Impl const&) = delete;
  Impl& operator=(Impl const&) = delete;
  ~Impl() {
    if (mapping != nullptr) ::munmap(mapping, mapping_size);
  }

  Reader reader_at(std::size_t pos) const { return Reader(bytes, label, pos); }
  [[noreturn]] void fail(std::size_t at, std::string const& what) const { throw_at(label, at, what); }
  [[noreturn]] void fail(std::string const& what) const { throw GgufError(label + ": " + what); }

  void parse();
  void parse_header(Reader& r, std::uint64_t& n_tensors, std::uint64_t& n_kv);
  void parse_metadata(Reader& r, std::uint64_t n_kv);
  void skip_value(Reader& r, KvEntry& e, std::string const& field);
  void skip_scalar(Reader& r, GgufValueType t, std::string const& field);
  GgufValueType read_value_type(Reader& r, std::string const& field);
  void read_alignment();
  std::vector<InfoPos> parse_tensor_infos(Reader& r, std::uint64_t n_tensors);
  TensorInfo parse_tensor_info(Reader& r, std::uint64_t index);
  void index_tensors(std::vector<InfoPos> const& pos);
  void place_tensors(std::size_t end_of_infos, std::vector<InfoPos> const& pos);

  KvEntry const* find(std::string_view key) const;
  KvEntry const& get(std::string_view key) const;
  [[noreturn]] void wrong_type(KvEntry const& e, std::string_view expected) const;
  [[noreturn]] void missing(std::string_view key) const { fail("metadata key " + printable(key) + " is missing"); }
  template <class T>
  T required(std::optional<T> value, std::string_view key) const {
    if (!value) missing(key);
    return *value;
  }
  template <class T, class Decode>
  std::vector<T> array(std::string_view key, std::string_view expected, bool (*accepts)(GgufValueType),
                       Decode decode) const;
};

void GgufFile::Impl::parse() {
  Reader r(bytes, label);
  std::uint64_t n_tensors = 0, n_kv = 0;
  parse_header(r, n_tensors, n_kv);
  parse_metadata(r, n_kv);
  read_alignment();
  const std::vector<InfoPos> pos = parse_tensor_infos(r, n_tensors);
  index_tensors(pos);
  place_tensors(r.pos(), pos);
}

void GgufFile::Impl::parse_header(Reader& r, std::uint64_t& n_tensors, std::uint64_t& n_kv) {
  auto const magic = r.read<std::array<char, 4>>("magic");
  if (std::string_view(magic.data(), 4) != "GGUF")
    fail(0, "bad magic \"" + printable(std::string_view(magic.data(), 4)) + "\", expected \"GGUF\"");
  const std::uint32_t v = r.read<std::uint32_t>("version");
  if (v != 0 && (v & 0xFFFFU) == 0)  // a big-endian v3 reads as 0x03000000
    fail(4, "version " + to_string(v) + " looks byte-swapped: big-endian GGUF files are not supported");
  if (v != 2 && v != 3) fail(4, "GGUF version " + to_string(v) + " is not supported (only versions 2 and 3)");
  version = v;

  n_tensors = r.read<std::uint64_t>("tensor_count");
  n_kv = r.read<std::uint64_t>("metadata_kv_count");
  // Bound both counts by the bytes that could hold them and by a cap. The counts are claims: the
  // directory grows only with the entries actually read, never by reserving what the header says.
  if (n_tensors > r.remaining() / min_tensor_info_bytes)
    fail(8, "tensor_count " + to_string(n_tensors) + " cannot fit in the " + to_string(r.remaining()) +
                " bytes after the header (a tensor info takes at least " + to_string(min_tensor_info_bytes) +
                " bytes)");
  if (n_kv > (r.remaining() - n_tensors * min_tensor_info_bytes) / min_kv_bytes)
    fail(16, "metadata_kv_count " + to_string(n_kv) + " cannot fit in the " + to_string(r.remaining()) +
                 " bytes after the header (a key/value pair takes at least " + to_string(min_kv_bytes) + " bytes)");
  if (n_tensors > max_entries)
    fail(8, "tensor_count " + to_string(n_tensors) + " exceeds the limit of " + to_string(max_entries));
  if (n_kv > max_entries)
    fail(16, "metadata_kv_count " + to_string(n_kv) + " exceeds the limit of " + to_string(max_entries));
}

GgufValueType GgufFile::Impl::read_value_type(Reader& r, std::string const& field) {
  const std::size_t at = r.pos();
  const std::uint32_t id = r.read<std::uint32_t>(field);
  if (id > static_cast<std::uint32_t>(GgufValueType::FLOAT64)) r.fail(at, field + " " + to_string(id) + " is invalid");
  return static_cast<GgufValueType>(id);
}

void GgufFile::Impl::parse_metadata(Reader& r, std::uint64_t n_kv) {
  for (std::uint64_t i = 0; i < n_kv; ++i) {
    const std::size_t key_pos = r.pos();
    const std::string_view key = r.read_string("key of metadata entry " + to_string(i));
    if (key.empty()) r.fail(key_pos, "key of metadata entry " + to_string(i) + " is empty");
    if (key.size() > max_key_bytes)
      r.fail(key_pos, "key " + printable(key) + " is longer than " + to_string(max_key_bytes) + " bytes");
    if (std::any_of(key.begin(), key.end(), [](char c) { return c < 0x20 || c > 0x7E; }))
      r.fail(key_pos, "key " + printable(key) + " contains a control or non-ASCII byte");
    if (kv_index.contains(key)) r.fail(key_pos, "duplicate key " + printable(key));

    KvEntry e{key, read_value_type(r, "value type of key " + printable(key)), GgufValueType::UINT8, 0, 0};
    skip_value(r, e, "value of key " + printable(key));
    kv_index.emplace(key, kvs.size());
    kvs.push_back(e);
  }
}

void GgufFile::Impl::skip_scalar(Reader& r, GgufValueType t, std::string const& field) {
  if (t == GgufValueType::STRING) {
    r.read_string(field);
  } else if (t == GgufValueType::BOOL) {
    const std::size_t at = r.pos();
    auto const b = r.read<std::uint8_t>(field);
    if (b > 1) r.fail(at, field + " is a bool with byte value " + to_string(b) + " (must be 0 or 1)");
  } else {
    r.skip(fixed_size(t), field);
  }
}

void GgufFile::Impl::skip_value(Reader& r, KvEntry& e, std::string const& field) {
  e.value_pos = r.pos();
  if (e.type != GgufValueType::ARRAY) return skip_scalar(r, e.type, field);

  const std::size_t type_pos = r.pos();
  e.element_type = read_value_type(r, "array element type of " + field);
  if (e.element_type == GgufValueType::ARRAY) r.fail(type_pos, "nested arrays are not supported (" + field + ")");
  const std::size_t count_pos = r.pos();
  e.count = r.read<std::uint64_t>("array count of " + field);
  // Strings take at least their 8-byte length each; this bounds the walk below by the file size.
  const std::uint64_t min_element = e.element_type == GgufValueType::STRING ? 8 : fixed_size(e.element_type);
  if (e.count > r.remaining() / min_element)
    r.fail(count_pos, "array count " + to_string(e.count) + " of " + field + " cannot fit in the " +
                          to_string(r.remaining()) + " bytes left");
  e.value_pos = r.pos();
  if (e.element_type == GgufValueType::STRING || e.element_type == GgufValueType::BOOL) {
    for (std::uint64_t i = 0; i < e.count; ++i)
      skip_scalar(r, e.element_type, "element " + to_string(i) + " of " + field);
  } else {
    r.skip(e.count * min_element, field);
  }
}

void GgufFile::Impl::read_alignment() {
  KvEntry const* e = find("general.alignment");
  if (e == nullptr) return;
  if (e->type != GgufValueType::UINT32)
    fail(e->value_pos, "general.alignment has type " + std::string(value_type_name(e->type)) + ", expected UINT32");
  Reader r = reader_at(e->value_pos);
  const std::uint32_t a = r.read<std::uint32_t>("general.alignment");
  if (!std::has_single_bit(a) || a > max_alignment)
    fail(e->value_pos,
         "general.alignment " + to_string(a) + " is not a power of two in [1, " + to_string(max_alignment) + "]");
  alignment = a;
}

std::vector<InfoPos> GgufFile::Impl::parse_tensor_infos(Reader& r, std::uint64_t n_tensors) {
  std::vector<InfoPos> pos;
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    const std::size_t name_pos = r.pos();
    tensors.push_back(parse_tensor_info(r, i));
    pos.push_back({name_pos, r.pos() - sizeof(std::uint64_t)});  // the offset is the info's last field
  }
  return pos;
}

// Built once `tensors` is complete, so the keys (views of the names) never move.
void GgufFile::Impl::index_tensors(std::vector<InfoPos> const& pos) {
  tensor_index.reserve(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i)
    if (!tensor_index.emplace(tensors[i].name, i).second)
      fail(pos[i].name, "duplicate tensor name " + printable(tensors[i].name));
}

TensorInfo GgufFile::Impl::parse_tensor_info(Reader& r, std::uint64_t index) {
  const std::size_t name_pos = r.pos();
  const std::string_view name = r.read_string("name of tensor " + to_string(index));
  if (name.empty()) fail(name_pos, "name of tensor " + to_string(index) + " is empty");
  if (name.size() > max_tensor_name_bytes || name.find('\0') != std::string_view::npos)
    fail(name_pos, "tensor name " + printable(name) + " is longer than " + to_string(max_tensor_name_bytes) +
                       " bytes or contains a NUL");
  const std::string what = "tensor " + printable(name);

  TensorInfo t{std::string(name), GgmlType::F32, 0, {1, 1, 1, 1}, 0, 0, nullptr};
  const std::size_t dims_pos = r.pos();
  const std::uint32_t n_dims = r.read<std::uint32_t>("n_dims of " + what);
  if (n_dims < 1 || n_dims > max_dims)
    fail(dims_pos, "n_dims " + to_string(n_dims) + " of " + what + " is outside [1, " + to_string(max_dims) + "]");
  t.n_dims = static_cast<int>(n_dims);
  std::uint64_t elements = 1;
  for (std::uint32_t d = 0; d < n_dims; ++d) {
    const std::string field = "ne[" + to_string(d) + "] of " + what;
    const std::size_t at = r.pos();
    const std::uint64_t ne = r.read<std::uint64_t>(field);
    if (ne == 0 || ne > int64_max)
      fail(at, field + " is " + to_string(static_cast<std::int64_t>(ne)) + ", must be > 0");
    if (elements > int64_max / ne) fail(at, "element count of " + what + " overflows int64 at " + field);
    elements *= ne;
    t.ne[d] = static_cast<std::int64_t>(ne);
  }

  const std::size_t type_pos = r.pos();
  const std::uint32_t type_id = r.read<std::uint32_t>("type of " + what);
  const std::string_view type_str = type_name(static_cast<GgmlType>(type_id));
  if (type_str == "unknown") fail(type_pos, what + " has unknown type (id " + to_string(type_id) + ")");
  if (!is_supported(type_id))
    fail(type_pos, what + " has unsupported type " + std::string(type_str) + " (id " + to_string(type_id) + ")");
  t.type = static_cast<GgmlType>(type_id);
  const std::uint64_t block = block_size(t.type);
  if (static_cast<std::uint64_t>(t.ne[0]) % block != 0)
    fail(dims_pos + 4, "row length ne[0] = " + to_string(t.ne[0]) + " of " + what + " is not a multiple of the " +
                           std::string(type_str) + " block size " + to_string(block));
  // Divide before multiplying: elements / block blocks of block_bytes each, checked in uint64.
  const std::uint64_t n_blocks = elements / block;
  if (n_blocks > std::numeric_limits<std::uint64_t>::max() / block_bytes(t.type))
    fail(dims_pos, "byte size of " + what + " overflows uint64");
  t.nbytes = n_blocks * block_bytes(t.type);

  t.offset = r.read<std::uint64_t>("offset of " + what);
  return t;
}

void GgufFile::Impl::place_tensors(std::size_t end_of_infos, std::vector<InfoPos> const& pos) {
  const std::uint64_t size = bytes.size();
  const std::uint64_t padding = (alignment - end_of_infos % alignment) % alignment;
  if (tensors.empty()) {
    data_offset = std::min<std::uint64_t>(end_of_infos + padding, size);
    return;
  }
  if (padding > size - end_of_infos)
    fail(end_of_infos, "file ends inside the padding before the data section (alignment " + to_string(alignment) + ")");
  data_offset = end_of_infos + padding;
  const std::uint64_t data_size = size - data_offset;

  for (std::size_t i = 0; i < tensors.size(); ++i) {
    TensorInfo& t = tensors[i];
    const std::string what = "tensor " + printable(t.name);
    if (t.offset % alignment != 0)
      fail(pos[i].offset, "offset " + to_string(t.offset) + " of " + what + " is not a multiple of the alignment " +
                              to_string(alignment));
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      fail(pos[i].offset, "data of " + what + " (offset " + to_string(t.offset) + ", " + to_string(t.nbytes) +
                              " bytes) extends past the end of the file (data section has " + to_string(data_size) +
                              " bytes)");
    t.data = bytes.data() + data_offset + t.offset;
  }

  std::vector<std::size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  // Ties keep file order, so the error names the later of two tensors at one offset.
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return tensors[a].offset < tensors[b].offset; });
  for (std::size_t k = 1; k < order.size(); ++k) {
    TensorInfo const& prev = tensors[order[k - 1]];
    TensorInfo const& cur = tensors[order[k]];
    if (prev.offset + prev.nbytes > cur.offset)  // no overflow: both lie inside the file
      fail(pos[order[k]].offset, "data of tensor " + printable(cur.name) + " (offset " + to_string(cur.offset) +
                                     ") overlaps tensor " + printable(prev.name) + " (offset " +
                                     to_string(prev.offset) + ", " + to_string(prev.nbytes) + " bytes)");
  }
}

// ---- Lookups -------------------------------------------------------------------------------

KvEntry const* GgufFile::Impl::find(std::string_view key) const {
  auto const it = kv_index.find(key);
  return it == kv_index.end() ? nullptr : &kvs[it->second];
}

KvEntry const& GgufFile::Impl::get(std::string_view key) const {
  if (KvEntry const* e = find(key)) return *e;
  missing(key);
}

void GgufFile::Impl::wrong_type(KvEntry const& e, std::string_view expected) const {
  std::string actual(value_type_name(e.type));
  if (e.type == GgufValueType::ARRAY) actual = "an array of " + std::string(value_type_name(e.element_type));
  fail(e.value_pos, "metadata key " + printable(e.key) + " has type " + actual + ", expected " + std::string(expected));
}

template <class T, class Decode>
std::vector<T> GgufFile::Impl::array(std::string_view key, std::string_view expected, bool (*accepts)(GgufValueType),
                                     Decode decode) const {
  KvEntry const& e = get(key);
  if (e.type != GgufValueType::ARRAY || !accepts(e.element_type)) wrong_type(e, expected);
  Reader r = reader_at(e.value_pos);
  std::vector<T> out;
  out.reserve(e.count);  // validated against the file size while parsing
  const std::string field = "element of " + printable(key);
  for (std::uint64_t i = 0; i < e.count; ++i) out.push_back(decode(r, e.element_type, field));
  return out;
}

// ---- GgufFile ------------------------------------------------------------------------------

GgufFile::GgufFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

GgufFile GgufFile::open(std::filesystem::path const& path) {
  auto impl = std::make_unique<Impl>();
  impl->label = path.string();
  auto const sys_fail = [&](std::string const& what) {
    throw GgufError(impl->label + ": " + what + ": " + std::generic_category().message(errno));
  };
  struct Descriptor {  // closed on every path; the mapping keeps the file alive after that
    int fd;
    ~Descriptor() {
      if (fd >= 0) ::close(fd);
    }
  } file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) sys_fail("cannot open");
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) sys_fail("cannot stat");
  if (!S_ISREG(st.st_mode)) throw GgufError(impl->label + ": not a regular file");
  if (st.st_size > 0) {  // mmap refuses length 0; an empty file fails in parse(), at the magic
    auto const size = static_cast<std::size_t>(st.st_size);
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, file.fd, 0);
    if (p == MAP_FAILED) sys_fail("cannot mmap");
    impl->mapping = p;
    impl->mapping_size = size;
    impl->bytes = {static_cast<std::byte const*>(p), size};
  }
  impl->parse();
  return GgufFile(std::move(impl));
}

GgufFile GgufFile::from_bytes(std::vector<std::byte> bytes, std::string label) {
  auto impl = std::make_unique<Impl>();
  impl->label = std::move(label);
  impl->owned = std::move(bytes);
  impl->bytes = impl->owned;
  impl->parse();
  return GgufFile(std::move(impl));
}

std::string const& GgufFile::label() const { return impl_->label; }
std::uint32_t GgufFile::version() const { return impl_->version; }
std::uint64_t GgufFile::alignment() const { return impl_->alignment; }
std::uint64_t GgufFile::data_offset() const { return impl_->data_offset; }
std::uint64_t GgufFile::file_size() const { return impl_->bytes.size(); }

bool GgufFile::has(std::string_view key) const { return impl_->find(key) != nullptr; }

std::optional<GgufValueType> GgufFile::value_type(std::string_view key) const {
  KvEntry const* e = impl_->find(key);
  return e ? std::optional(e->type) : std::nullopt;
}

std::optional<GgufValueType> GgufFile::array_type(std::string_view key) const {
  KvEntry const* e = impl_->find(key);
  return e && e->type == GgufValueType::ARRAY ? std::optional(e->element_type) : std::nullopt;
}

std::optional<std::string_view> GgufFile::find_string(std::string_view key) const {
  KvEntry const* e = impl_->find(key);
  if (e == nullptr) return std::nullopt;
  if (e->type != GgufValueType::STRING) impl_->wrong_type(*e, "STRING");
  return impl_->reader_at(e->value_pos).read_string(printable(key));
}

std::optional<std::uint64_t> GgufFile::find_uint(std::string_view key) const {
  KvEntry const* e = impl_->find(key);
  if (e == nullptr) return std::nullopt;
  if (!is_integer(e->type)) impl_->wrong_type(*e, "an unsigned integer");
  Reader r = impl_->reader_at(e->value_pos);
  const WideInt v = read_int(r, e->type, printable(key));
  if (v.negative)
    impl_->fail(e->value_pos, "metadata key " + printable(key) + " is negative (" +
                                  to_string(static_cast<std::int64_t>(v.bits)) + "), expected an unsigned integer");
  return v.bits;
}

std::optional<std::int64_t> GgufFile::find_int(std::string_view key) const {
  KvEntry const* e = impl_->find(key);
  if (e == nullptr) return std::nullopt;
  if (!is_integer(e->type)) impl_->wrong_type(*e, "an integer");
  Reader r = impl_->reader_at(e->value_pos);
  const WideInt v = read_int(r, e->type, printable(key));
  if (!v.negative && v.bits > int64_max)
    impl_->fail(e->value_pos, "metadata key " + printable(key) + " value " + to_string(v.bits) + " exceeds INT64_MAX");
  return static_cast<std::int64_t>(v.bits);
}

std::optional<double> GgufFile::find_float(std::string_view key) const {
  KvEntry const* e = impl_->find(key);
  if (e == nullptr) return std::nullopt;
  Reader r = impl_->reader_at(e->value_pos);
  if (is_float(e->type)) return read_float(r, e->type, printable(key));
  if (!is_integer(e->type)) impl_->wrong_type(*e, "a number");
  const WideInt v = read_int(r, e->type, printable(key));
  return v.negative ? static_cast<double>(static_cast<std::int64_t>(v.bits)) : static_cast<double>(v.bits);
}

std::optional<bool> GgufFile::find_bool(std::string_view key) const {
  KvEntry const* e = impl_->find(key);
  if (e == nullptr) return std::nullopt;
  if (e->type != GgufValueType::BOOL) impl_->wrong_type(*e, "BOOL");
  return impl_->reader_at(e->value_pos).read<std::uint8_t>(printable(key)) != 0;  // validated as 0 or 1
}

// The get_* forms: find_* plus an error naming the key when it is absent.
std::string_view GgufFile::get_string(std::string_view key) const { return impl_->required(find_string(key), key); }
std::uint64_t GgufFile::get_uint(std::string_view key) const { return impl_->required(find_uint(key), key); }
std::int64_t GgufFile::get_int(std::string_view key) const { return impl_->required(find_int(key), key); }
double GgufFile::get_float(std::string_view key) const { return impl_->required(find_float(key), key); }
bool GgufFile::get_bool(std::string_view key) const { return impl_->required(find_bool(key), key); }

std::vector<std::string_view> GgufFile::get_string_array(std::string_view key) const {
  return impl_->array<std::string_view>(
      key, "an array of STRING", [](GgufValueType t) { return t == GgufValueType::STRING; },
      [](Reader& r, GgufValueType, std::string const& field) { return r.read_string(field); });
}

std::vector<std::int64_t> GgufFile::get_int_array(std::string_view key) const {
  return impl_->array<std::int64_t>(key, "an array of integers", is_integer,
                                    [](Reader& r, GgufValueType t, std::string const& field) {
                                      const std::size_t at = r.pos();
                                      const WideInt v = read_int(r, t, field);
                                      if (!v.negative && v.bits > int64_max) r.fail(at, field + " exceeds INT64_MAX");
                                      return static_cast<std::int64_t>(v.bits);
                                    });
}

std::vector<double> GgufFile::get_float_array(std::string_view key) const {
  return impl_->array<double>(key, "an array of FLOAT32 or FLOAT64", is_float, read_float);
}

std::vector<std::string> GgufFile::metadata_keys() const {
  std::vector<std::string> keys;
  keys.reserve(impl_->kvs.size());
  for (KvEntry const& e : impl_->kvs) keys.emplace_back(e.key);
  return keys;
}

TensorInfo const* GgufFile::find_tensor(std::string_view name) const {
  auto const it = impl_->tensor_index.find(name);
  return it == impl_->tensor_index.end() ? nullptr : &impl_->tensors[it->second];
}

TensorInfo const& GgufFile::tensor(std::string_view name) const {
  if (TensorInfo const* t = find_tensor(name)) return *t;
  impl_->fail("tensor " + printable(name) + " is missing (the file has " + to_string(impl_->tensors.size()) +
              " tensors)");
}

std::span<const TensorInfo> GgufFile::tensors() const { return impl_->tensors; }

}  // namespace skipllm::engine
