#include "format/standin_file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

#include <skipllm/numeric.hpp>

#include "format/whole_file.hpp"

namespace skipllm::engine {

namespace {

// Largest accepted hidden size and rank: far above any model this engine runs, small enough
// that a corrupt header cannot make us allocate gigabytes before the size check.
constexpr std::uint32_t kMaxHidden = 65536;

bool finite_half(std::uint16_t h) { return (h & 0x7c00u) != 0x7c00u; }

class Reader {
 public:
  Reader(std::span<std::uint8_t const> bytes, std::string const& source) : bytes_(bytes), source_(source) {}

  [[noreturn]] void fail(std::string const& what) const {
    throw StandInFileError(source_ + ": " + what + " (at byte " + std::to_string(pos_) + ")");
  }
  std::uint32_t u32(char const* what) {
    need(4, what);
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(bytes_[pos_ + static_cast<std::size_t>(i)]) << (8 * i);
    pos_ += 4;
    return v;
  }
  std::vector<std::uint16_t> halves(std::size_t n, std::string const& what) {
    need(2 * n, what.c_str());
    std::vector<std::uint16_t> out(n);
    for (std::size_t i = 0; i < n; ++i) {
      out[i] = static_cast<std::uint16_t>(bytes_[pos_ + 2 * i] | (bytes_[pos_ + 2 * i + 1] << 8));
      if (!finite_half(out[i])) fail(what + " holds a non-finite value at index " + std::to_string(i));
    }
    pos_ += 2 * n;
    return out;
  }
  std::string magic() {
    need(kStandInMagic.size(), "the magic");
    std::string m(reinterpret_cast<char const*>(bytes_.data()), kStandInMagic.size());
    pos_ += kStandInMagic.size();
    return m;
  }
  std::size_t left() const { return bytes_.size() - pos_; }

 private:
  void need(std::size_t n, char const* what) const {
    if (left() < n)
      fail(std::string("truncated: ") + what + " needs " + std::to_string(n) + " bytes, " + std::to_string(left()) +
           " left");
  }
  std::span<std::uint8_t const> bytes_;
  std::string const& source_;
  std::size_t pos_ = 0;
};

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put_halves(std::vector<std::uint8_t>& out, std::vector<std::uint16_t> const& v) {
  for (std::uint16_t const h : v) {
    out.push_back(static_cast<std::uint8_t>(h & 0xff));
    out.push_back(static_cast<std::uint8_t>(h >> 8));
  }
}

}  // namespace

StandInMap const* StandInMaps::find(int layer) const noexcept {
  for (StandInMap const& m : maps)
    if (m.layer == layer) return &m;
  return nullptr;
}

skipllm::LayerMask StandInMaps::layer_mask() const noexcept {
  skipllm::LayerMask mask;
  for (StandInMap const& m : maps) mask.insert(m.layer);
  return mask;
}

std::uint16_t float_to_half(float v) { return skipllm::from_float<skipllm::half_t>(v).bits; }

StandInMaps parse_standin_maps(std::span<std::uint8_t const> bytes, std::string const& source) {
  Reader r(bytes, source);
  if (r.magic() != kStandInMagic) r.fail("not a stand-in file (the magic is not \"SKLSTAND\")");
  std::uint32_t const version = r.u32("the version");
  if (version != kStandInVersion)
    r.fail("this skipllm reads version " + std::to_string(kStandInVersion) + ", got " + std::to_string(version));
  std::uint32_t const hidden = r.u32("the hidden size");
  std::uint32_t const layers = r.u32("the layer count");
  std::uint32_t const count = r.u32("the map count");
  std::uint32_t const dtype = r.u32("the value type");
  if (hidden == 0 || hidden > kMaxHidden)
    r.fail("hidden size " + std::to_string(hidden) + " is outside 1.." + std::to_string(kMaxHidden));
  if (layers == 0 || layers > static_cast<std::uint32_t>(skipllm::LayerMask::kMaxLayers))
    r.fail("layer count " + std::to_string(layers) + " is outside 1.." +
           std::to_string(skipllm::LayerMask::kMaxLayers));
  if (count > layers)
    r.fail(std::to_string(count) + " maps for " + std::to_string(layers) + " layers (at most one per layer)");
  if (dtype != kStandInBinary16) r.fail("value type " + std::to_string(dtype) + " is not 1 (binary16)");
  StandInMaps out;
  out.hidden = static_cast<int>(hidden);
  out.layers = static_cast<int>(layers);
  std::size_t const d = hidden;
  for (std::uint32_t i = 0; i < count; ++i) {
    std::string const what = "map " + std::to_string(i);
    StandInMap m;
    std::uint32_t const layer = r.u32("a map's layer");
    std::uint32_t const rank = r.u32("a map's rank");
    if (layer >= layers) r.fail(what + ": layer " + std::to_string(layer) + " is not below " + std::to_string(layers));
    if (!out.maps.empty() && static_cast<int>(layer) <= out.maps.back().layer)
      r.fail(what + ": layer " + std::to_string(layer) + " is not after layer " +
             std::to_string(out.maps.back().layer) + " (maps are stored once each, ascending)");
    if (rank >= hidden) r.fail(what + ": rank " + std::to_string(rank) + " is not below the hidden size (0 = full)");
    m.layer = static_cast<int>(layer);
    m.rank = static_cast<int>(rank);
    std::string const name = what + " (layer " + std::to_string(layer) + ")";
    if (rank == 0) {
      m.a = r.halves(d * d, name + " A");
    } else {
      m.v = r.halves(rank * d, name + " V");
      m.u = r.halves(d * rank, name + " U");
    }
    m.bias = r.halves(d, name + " b");
    out.maps.push_back(std::move(m));
  }
  if (r.left() != 0) r.fail(std::to_string(r.left()) + " unexpected bytes after the last map");
  return out;
}

std::vector<std::uint8_t> standin_bytes(StandInMaps const& maps) {
  std::vector<std::uint8_t> out(kStandInMagic.begin(), kStandInMagic.end());
  put_u32(out, kStandInVersion);
  put_u32(out, static_cast<std::uint32_t>(maps.hidden));
  put_u32(out, static_cast<std::uint32_t>(maps.layers));
  put_u32(out, static_cast<std::uint32_t>(maps.maps.size()));
  put_u32(out, kStandInBinary16);
  for (StandInMap const& m : maps.maps) {
    put_u32(out, static_cast<std::uint32_t>(m.layer));
    put_u32(out, static_cast<std::uint32_t>(m.rank));
    put_halves(out, m.rank == 0 ? m.a : m.v);
    if (m.rank != 0) put_halves(out, m.u);
    put_halves(out, m.bias);
  }
  parse_standin_maps(out, "stand-in maps to write");  // the same checks as reading: never write what cannot be read
  return out;
}

StandInMaps load_standin_maps(std::filesystem::path const& path) {
  std::string const bytes = read_whole_file<StandInFileError>(path, "stand-in file");
  return parse_standin_maps({reinterpret_cast<std::uint8_t const*>(bytes.data()), bytes.size()}, path.string());
}

void save_standin_maps(std::filesystem::path const& path, StandInMaps const& maps) {
  std::vector<std::uint8_t> const bytes = standin_bytes(maps);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw StandInFileError("cannot write stand-in file " + path.string() + ": " + std::strerror(errno));
  out.write(reinterpret_cast<char const*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw StandInFileError("cannot write stand-in file " + path.string());
}

void check_fits(StandInMaps const& maps, int hidden, int layers, std::string const& source) {
  if (maps.hidden != hidden || maps.layers != layers) {
    throw StandInFileError(source + ": made for a model with hidden size " + std::to_string(maps.hidden) + " and " +
                           std::to_string(maps.layers) + " layers; this model has hidden size " +
                           std::to_string(hidden) + " and " + std::to_string(layers) + " layers");
  }
}

}  // namespace skipllm::engine
