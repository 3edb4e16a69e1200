// Random weight rows in every ggml block format, shared by the quant tests.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "format/quant.hpp"

namespace quant_test {

using skipllm::engine::GgmlType;
namespace eng = skipllm::engine;

// Random blocks with finite, realistic fp16 scales (random bytes there would be NaN or inf).
inline std::vector<std::byte> random_row(GgmlType type, std::int64_t n, std::mt19937& rng) {
  const std::size_t bytes = static_cast<std::size_t>(n) / eng::block_size(type) * eng::block_bytes(type);
  std::vector<std::byte> row(bytes);
  for (auto& b : row) b = static_cast<std::byte>(rng() & 0xFF);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  auto const put_half = [&](std::size_t at) {  // a random fp16 in [0.0039, 0.5): exponent 7..13
    const auto h = static_cast<std::uint16_t>(((7 + rng() % 7) << 10) | (rng() & 0x3FF) | (rng() % 2 ? 0x8000 : 0));
    std::memcpy(&row[at], &h, 2);
  };
  const std::size_t bb = eng::block_bytes(type);
  switch (type) {
    case GgmlType::F32:
      for (std::size_t i = 0; i < bytes; i += 4) {
        float const f = value(rng);
        std::memcpy(&row[i], &f, 4);
      }
      break;
    case GgmlType::F16:
      for (std::size_t i = 0; i < bytes; i += 2) put_half(i);
      break;
    case GgmlType::BF16:
      for (std::size_t i = 0; i < bytes; i += 2) {
        auto const h = static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(value(rng)) >> 16);
        std::memcpy(&row[i], &h, 2);
      }
      break;
    case GgmlType::Q6_K:
      for (std::size_t i = 0; i < bytes; i += bb) put_half(i + 208);
      break;
    case GgmlType::Q4_1:
    case GgmlType::Q5_1:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
      for (std::size_t i = 0; i < bytes; i += bb) put_half(i), put_half(i + 2);  // d and m / dmin
      break;
    default:  // Q4_0, Q5_0, Q8_0
      for (std::size_t i = 0; i < bytes; i += bb) put_half(i);
  }
  return row;
}

}  // namespace quant_test
