// Stand-in files: the fitted linear maps that replace skipped FFNs (`skipllm calibrate
// --standin` writes one beside the policy config, which names it; docs/standin.md).
//
// For layer l the map is g = A_l * n + b_l, n = norm(h) the FFN's own input (the layer's FFN
// RMSNorm of the residual), stored either full (A: [hidden][hidden]) or as a rank-r product
// A = U * V (V: [r][hidden] read first, U: [hidden][r]). Values are IEEE binary16.
//
// Binary layout, little-endian:
//
//   header  char magic[8] = "SKLSTAND"; u32 version = 1; u32 hidden; u32 layers (of the model);
//           u32 maps; u32 dtype = 1 (binary16)
//   maps    (ascending layer, each layer at most once):
//           u32 layer; u32 rank (0 = full); then
//           full:   A [hidden * hidden]                                  row-major [out][in]
//           rank r: V [r * hidden] row-major [r][in], U [hidden * r] row-major [out][r]
//           b [hidden]
//   nothing after the last map.
//
// Reading is strict: every field is range-checked, every value must be finite, the size must
// be exact, and check_fits() refuses a file made for another model (hidden size, depth), each
// with a message naming the file and what is wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <skipllm/layer_mask.hpp>

namespace skipllm::engine {

struct StandInFileError : std::runtime_error {
  using runtime_error::runtime_error;
};

inline constexpr std::string_view kStandInMagic = "SKLSTAND";
inline constexpr std::uint32_t kStandInVersion = 1;
inline constexpr std::uint32_t kStandInBinary16 = 1;

//! One layer's map, g = A n + b, values as binary16 bits.
struct StandInMap {
  int layer = 0;
  int rank = 0;                     //!< 0: full A; else the rank of A = U V
  std::vector<std::uint16_t> a;     //!< full: [hidden][hidden]
  std::vector<std::uint16_t> v;     //!< rank r: [r][hidden]
  std::vector<std::uint16_t> u;     //!< rank r: [hidden][r]
  std::vector<std::uint16_t> bias;  //!< [hidden]

  //! Bytes one use of the map reads (every stored value once).
  std::size_t bytes() const noexcept { return 2 * (a.size() + v.size() + u.size() + bias.size()); }
};

struct StandInMaps {
  int hidden = 0;
  int layers = 0;                //!< depth of the model the maps were fitted on
  std::vector<StandInMap> maps;  //!< ascending layer

  //! The map of `layer`, or nullptr.
  StandInMap const* find(int layer) const noexcept;
  //! The layers that have a map.
  skipllm::LayerMask layer_mask() const noexcept;
};

//! IEEE binary16 bits of `v` (round to nearest even; overflow to infinity): skipllm::from_float<half_t>.
std::uint16_t float_to_half(float v);

//! Serializes `maps` (checked as parse_standin_maps would check them). Throws StandInFileError.
std::vector<std::uint8_t> standin_bytes(StandInMaps const& maps);
//! Parses a stand-in file's bytes; `source` names it in messages. Throws StandInFileError.
StandInMaps parse_standin_maps(std::span<std::uint8_t const> bytes, std::string const& source = "stand-in file");

StandInMaps load_standin_maps(std::filesystem::path const& path);
void save_standin_maps(std::filesystem::path const& path, StandInMaps const& maps);

//! Throws StandInFileError unless the maps were made for a model of this hidden size and depth.
void check_fits(StandInMaps const& maps, int hidden, int layers, std::string const& source);

}  // namespace skipllm::engine
