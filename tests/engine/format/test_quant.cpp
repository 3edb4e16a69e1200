// Tests of the dequantizers and dot_row: bit-exact against golden vectors from the independent
// gguf Python package (fixtures/make_quant_golden.py), hand-built blocks for the layouts' tricky
// corners, and dot_row (both paths) against dequantize_row plus an exact dot product.
#define BOOST_TEST_MODULE engine_quant
#include <boost/test/unit_test.hpp>

#include "format/gguf.hpp"
#include "format/quant.hpp"
#include "format/random_blocks.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace eng = skipllm::engine;
using eng::GgmlType;
using quant_test::random_row;

namespace {

constexpr GgmlType all_types[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,
                                  GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                                  GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }

// The golden vectors, a GGUF file written by gguf-py (named .bin: the repository ignores *.gguf).
std::filesystem::path golden_path() {
  char const* dir = std::getenv("SKIPLLM_FIXTURES");
  BOOST_TEST_REQUIRE(dir != nullptr, "SKIPLLM_FIXTURES is not set (ctest sets it to tests/engine/fixtures)");
  return std::filesystem::path(dir) / "quant_golden.gguf.bin";
}

// A block under construction: raw bytes with little-endian field writers.
struct Block {
  std::vector<std::byte> b;
  explicit Block(std::size_t size) : b(size) {}
  void u8(std::size_t at, unsigned v) { b[at] = static_cast<std::byte>(v); }
  void u16(std::size_t at, std::uint16_t v) { std::memcpy(&b[at], &v, 2); }
  void u32(std::size_t at, std::uint32_t v) { std::memcpy(&b[at], &v, 4); }
};

std::vector<float> dequant(GgmlType type, Block const& block, std::int64_t n) {
  std::vector<float> out(static_cast<std::size_t>(n));
  eng::dequantize_row(type, block.b.data(), out.data(), n);
  return out;
}

// fp16 bit patterns used below (exact values).
constexpr std::uint16_t h_quarter = 0x3400, h_half = 0x3800, h_one = 0x3C00, h_two = 0x4000, h_minus_one = 0xBC00;

// Element e's expected value must match bit for bit; values are chosen to be exact in float.
void check_elements(std::vector<float> const& got, std::vector<double> const& want) {
  BOOST_TEST_REQUIRE(got.size() == want.size());
  int bad = 0;
  for (std::size_t e = 0; e < got.size(); ++e) {
    if (static_cast<double>(got[e]) != want[e] && ++bad <= 5)
      BOOST_ERROR("element " << e << ": got " << got[e] << ", want " << want[e]);
  }
  BOOST_TEST(bad == 0);
}

}  // namespace

// ---- Golden vectors from gguf-py -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(dequantize_matches_gguf_py_bit_for_bit) {
  const eng::GgufFile golden = eng::GgufFile::open(golden_path());
  BOOST_TEST_MESSAGE("golden vectors: " << golden.get_string("golden.generator"));
  for (const GgmlType type : all_types) {
    const std::string name(eng::type_name(type));
    BOOST_TEST_CONTEXT("type " << name) {
      eng::TensorInfo const& blocks = golden.tensor(name + ".blocks");
      eng::TensorInfo const& expected = golden.tensor(name + ".expected");
      BOOST_TEST_REQUIRE((blocks.type == type));
      BOOST_TEST_REQUIRE((expected.type == GgmlType::F32));
      BOOST_TEST_REQUIRE(blocks.ne == expected.ne, boost::test_tools::per_element());

      const std::int64_t n = blocks.row_length() * blocks.rows();
      std::vector<float> want(static_cast<std::size_t>(n));
      std::memcpy(want.data(), expected.data, expected.nbytes);
      // Row by row (the engine's use) and the whole tensor in one call must both match.
      std::vector<float> by_row(want.size()), whole(want.size());
      for (std::int64_t r = 0; r < blocks.rows(); ++r)
        eng::dequantize_row(type, blocks.data + r * blocks.row_bytes(), by_row.data() + r * blocks.row_length(),
                            blocks.row_length());
      eng::dequantize_row(type, blocks.data, whole.data(), n);
      int mismatches = 0;
      for (std::size_t i = 0; i < want.size(); ++i) {
        if ((bits(by_row[i]) != bits(want[i]) || bits(whole[i]) != bits(want[i])) && ++mismatches <= 5)
          BOOST_ERROR("element " << i << ": got 0x" << std::hex << bits(by_row[i]) << ", gguf-py 0x" << bits(want[i]));
      }
      BOOST_TEST(mismatches == 0);
    }
  }
}

// ---- Hand-built blocks -----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(f16_every_bit_pattern) {
  // An independent formula for IEEE binary16: (-1)^s * 2^(e-15) * (1 + m/1024), or
  // 2^-14 * m/1024 when e = 0. Infinities and NaNs (with their payload, as numpy keeps it) apart.
  int bad = 0;
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    int const sign = h >> 15, e = (h >> 10) & 0x1F, m = h & 0x3FF;
    float const got = eng::half_to_float(static_cast<std::uint16_t>(h));
    std::uint32_t want;
    if (e == 0x1F) {
      want = (static_cast<std::uint32_t>(sign) << 31) | 0x7F800000U | (static_cast<std::uint32_t>(m) << 13);
    } else {
      double const magnitude = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
      want = bits(static_cast<float>(sign ? -magnitude : magnitude));
    }
    if (bits(got) != want && ++bad <= 5) BOOST_ERROR("half 0x" << std::hex << h << " -> 0x" << bits(got));
  }
  BOOST_TEST(bad == 0);
}

BOOST_AUTO_TEST_CASE(f16_special_values_through_dequantize_row) {
  const std::uint16_t in[8] = {0x0001, 0x03FF, 0x8000, 0x7BFF, 0x7C00, 0xFC00, 0x7E00, 0x7C01};
  const std::uint32_t want[8] = {0x33800000,              // smallest subnormal, 2^-24
                                 0x387FC000,              // largest subnormal
                                 0x80000000,              // -0
                                 0x477FE000,              // 65504
                                 0x7F800000, 0xFF800000,  // +-inf
                                 0x7FC00000,              // quiet NaN
                                 0x7F802000};             // signalling NaN, payload kept
  Block b(sizeof in);
  std::memcpy(b.b.data(), in, sizeof in);
  const std::vector<float> got = dequant(GgmlType::F16, b, 8);
  for (int i = 0; i < 8; ++i) BOOST_TEST(bits(got[i]) == want[i]);
}

BOOST_AUTO_TEST_CASE(bf16_nan_inf_and_subnormal) {
  const std::uint16_t in[6] = {0x7FC1, 0x7F80, 0xFF80, 0x3F80, 0x0001, 0x8000};
  Block b(sizeof in);
  std::memcpy(b.b.data(), in, sizeof in);
  const std::vector<float> got = dequant(GgmlType::BF16, b, 6);
  BOOST_TEST(std::isnan(got[0]));
  BOOST_TEST(bits(got[0]) == 0x7FC10000u);  // payload kept
  BOOST_TEST(bits(got[1]) == 0x7F800000u);
  BOOST_TEST(bits(got[2]) == 0xFF800000u);
  BOOST_TEST(got[3] == 1.0f);
  BOOST_TEST(bits(got[4]) == 0x00010000u);  // an fp32 subnormal, not flushed
  BOOST_TEST(bits(got[5]) == 0x80000000u);
}

BOOST_AUTO_TEST_CASE(q8_0_signed_quants) {
  Block b(34);
  b.u16(0, h_half);
  std::vector<double> want(32);
  for (int j = 0; j < 32; ++j) {
    int const q = j * 9 - 128;  // -128 .. 151, wrapped into int8 below
    auto const q8 = static_cast<std::int8_t>(static_cast<std::uint8_t>(q & 0xFF));
    b.u8(2 + j, static_cast<std::uint8_t>(q8));
    want[j] = 0.5 * q8;
  }
  check_elements(dequant(GgmlType::Q8_0, b, 32), want);
}

// Byte j of Q4_0/Q4_1 carries element j in its low nibble and element j+16 in its high nibble.
BOOST_AUTO_TEST_CASE(q4_0_and_q4_1_nibble_order) {
  Block q40(18), q41(20);
  q40.u16(0, h_two);
  q41.u16(0, h_quarter);
  q41.u16(2, h_minus_one);
  std::vector<double> want40(32), want41(32);
  for (int j = 0; j < 16; ++j) {
    int const low = j, high = (j * 5 + 3) % 16;
    q40.u8(2 + j, static_cast<unsigned>(low | high << 4));
    q41.u8(4 + j, static_cast<unsigned>(low | high << 4));
    want40[j] = 2.0 * (low - 8);
    want40[j + 16] = 2.0 * (high - 8);
    want41[j] = 0.25 * low - 1.0;
    want41[j + 16] = 0.25 * high - 1.0;
  }
  check_elements(dequant(GgmlType::Q4_0, q40, 32), want40);
  check_elements(dequant(GgmlType::Q4_1, q41, 32), want41);
}

// Q5: bit j of the 32-bit qh is element j's fifth bit, for both nibble halves.
BOOST_AUTO_TEST_CASE(q5_0_and_q5_1_fifth_bits) {
  const std::uint32_t qh = 0xA5C3F00Fu;  // every byte of qh different, both halves mixed
  Block q50(22), q51(24);
  q50.u16(0, h_one);
  q50.u32(2, qh);
  q51.u16(0, h_half);
  q51.u16(2, h_two);
  q51.u32(4, qh);
  std::vector<double> want50(32), want51(32);
  for (int j = 0; j < 16; ++j) {
    int const low = (j * 7) % 16, high = 15 - j;
    q50.u8(6 + j, static_cast<unsigned>(low | high << 4));
    q51.u8(8 + j, static_cast<unsigned>(low | high << 4));
    for (int const e : {j, j + 16}) {
      int const q = (e < 16 ? low : high) + 16 * static_cast<int>((qh >> e) & 1);
      want50[e] = q - 16.0;
      want51[e] = 0.5 * q + 2.0;
    }
  }
  check_elements(dequant(GgmlType::Q5_0, q50, 32), want50);
  check_elements(dequant(GgmlType::Q5_1, q51, 32), want51);
}

namespace {

// Packs eight 6-bit scales and mins into K-quants' 12 bytes, following the layout description
// (reliability.md §3.4) from the writer's side: sub-blocks 0..3 in the low 6 bits of bytes 0..3
// (scales) and 4..7 (mins); sub-blocks 4..7 as low nibbles (scale) and high nibbles (min) of bytes
// 8..11, with their top 2 bits in bits 6..7 of bytes 0..3 (scales) and 4..7 (mins).
std::array<std::uint8_t, 12> pack_k_scales(int const (&sc)[8], int const (&mn)[8]) {
  std::array<std::uint8_t, 12> s{};
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<std::uint8_t>(sc[j] | (sc[j + 4] >> 4) << 6);
    s[j + 4] = static_cast<std::uint8_t>(mn[j] | (mn[j + 4] >> 4) << 6);
    s[j + 8] = static_cast<std::uint8_t>((sc[j + 4] & 0xF) | (mn[j + 4] & 0xF) << 4);
  }
  return s;
}

// Sub-blocks 4..7 use all 6 bits (values >= 32), where the unpacking is easiest to get wrong.
constexpr int k_scales[8] = {1, 7, 33, 63, 40, 45, 62, 37};
constexpr int k_mins[8] = {2, 9, 34, 61, 48, 33, 63, 52};

// Q4_K / Q5_K block: d = 1, dmin = 0.5, the scales above, quants from a fixed pattern.
Block k_block(bool five_bit) {
  Block b(five_bit ? 176 : 144);
  b.u16(0, h_one);
  b.u16(2, h_half);
  auto const s = pack_k_scales(k_scales, k_mins);
  for (int i = 0; i < 12; ++i) b.u8(4 + i, s[i]);
  const std::size_t qs = five_bit ? 48 : 16;
  for (int i = 0; i < 128; ++i) b.u8(qs + i, static_cast<unsigned>((i * 73 + 11) & 0xFF));
  if (five_bit)
    for (int l = 0; l < 32; ++l) b.u8(16 + l, static_cast<unsigned>((l * 37 + 5) & 0xFF));
  return b;
}

// Element e of a Q4_K/Q5_K block, straight from the layout: sub-block j = e/32 takes the low
// (j even) or high (j odd) nibbles of qs[32*(j/2) .. +31], plus bit j of qh[e%32] for Q5_K.
double k_element(Block const& b, bool five_bit, int e) {
  int const j = e / 32, l = e % 32;
  auto const byte = [&](std::size_t at) { return std::to_integer<int>(b.b[at]); };
  int q = (byte((five_bit ? 48 : 16) + 32 * (j / 2) + l) >> (j % 2 ? 4 : 0)) & 0xF;
  if (five_bit) q += 16 * ((byte(16 + l) >> j) & 1);
  return 1.0 * k_scales[j] * q - 0.5 * k_mins[j];
}

}  // namespace

BOOST_AUTO_TEST_CASE(q4_k_and_q5_k_six_bit_scales_of_every_sub_block) {
  for (bool const five_bit : {false, true}) {
    BOOST_TEST_CONTEXT((five_bit ? "Q5_K" : "Q4_K")) {
      const Block b = k_block(five_bit);
      std::vector<double> want(256);
      for (int e = 0; e < 256; ++e) want[e] = k_element(b, five_bit, e);
      check_elements(dequant(five_bit ? GgmlType::Q5_K : GgmlType::Q4_K, b, 256), want);
    }
  }
}

// Q6_K: per 128-element half, outputs l, l+32, l+64, l+96 take the low nibble of ql[l], the low
// nibble of ql[l+32], the high nibble of ql[l], the high nibble of ql[l+32]; their top 2 bits are
// bits 0-1, 2-3, 4-5, 6-7 of qh[l]. q - 32 is scaled by d * scales[e/16] (int8).
BOOST_AUTO_TEST_CASE(q6_k_every_qh_lane) {
  Block b(210);
  for (int i = 0; i < 128; ++i) b.u8(i, static_cast<unsigned>((i * 29 + 7) & 0xFF));
  for (int i = 0; i < 64; ++i) b.u8(128 + i, static_cast<unsigned>((i * 53 + 0x1B) & 0xFF));  // all lane values
  int scales[16];
  for (int i = 0; i < 16; ++i) {
    scales[i] = i * 17 - 128;  // -128 .. 127, negative and positive
    b.u8(192 + i, static_cast<unsigned>(scales[i] & 0xFF));
  }
  b.u16(208, h_quarter);
  auto const byte = [&](std::size_t at) { return std::to_integer<int>(b.b[at]); };
  std::vector<double> want(256);
  for (int half = 0; half < 2; ++half) {
    for (int l = 0; l < 32; ++l) {
      int const ql0 = byte(64 * half + l), ql1 = byte(64 * half + l + 32), qh = byte(128 + 32 * half + l);
      int const q[4] = {(ql0 & 0xF) | (qh & 3) << 4, (ql1 & 0xF) | ((qh >> 2) & 3) << 4,
                        (ql0 >> 4) | ((qh >> 4) & 3) << 4, (ql1 >> 4) | ((qh >> 6) & 3) << 4};
      for (int k = 0; k < 4; ++k) {
        int const e = 128 * half + l + 32 * k;
        want[e] = 0.25 * scales[e / 16] * (q[k] - 32);
      }
    }
  }
  check_elements(dequant(GgmlType::Q6_K, b, 256), want);
}

// ---- Geometry and argument checks ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(block_geometry_and_names) {
  struct Expect {
    GgmlType type;
    char const* name;
    std::size_t block, bytes;
  };
  for (Expect const& e : {Expect{GgmlType::F32, "F32", 1, 4},
                          {GgmlType::F16, "F16", 1, 2},
                          {GgmlType::BF16, "BF16", 1, 2},
                          {GgmlType::Q4_0, "Q4_0", 32, 18},
                          {GgmlType::Q4_1, "Q4_1", 32, 20},
                          {GgmlType::Q5_0, "Q5_0", 32, 22},
                          {GgmlType::Q5_1, "Q5_1", 32, 24},
                          {GgmlType::Q8_0, "Q8_0", 32, 34},
                          {GgmlType::Q4_K, "Q4_K", 256, 144},
                          {GgmlType::Q5_K, "Q5_K", 256, 176},
                          {GgmlType::Q6_K, "Q6_K", 256, 210}}) {
    BOOST_TEST(eng::type_name(e.type) == e.name);
    BOOST_TEST(eng::block_size(e.type) == e.block);
    BOOST_TEST(eng::block_bytes(e.type) == e.bytes);
    BOOST_TEST(eng::is_supported(static_cast<std::uint32_t>(e.type)));
  }
  BOOST_TEST(eng::type_name(static_cast<GgmlType>(16)) == "IQ2_XXS");
  BOOST_TEST(eng::type_name(static_cast<GgmlType>(9999)) == "unknown");
  for (const std::uint32_t id : {4u, 9u, 10u, 16u, 24u, 31u, 39u, 43u, 0xFFFFFFFFu}) BOOST_TEST(!eng::is_supported(id));
}

BOOST_AUTO_TEST_CASE(bad_arguments_throw) {
  std::vector<std::byte> src(1024);
  std::vector<float> dst(1024);
  BOOST_CHECK_THROW(eng::dequantize_row(GgmlType::Q4_1, src.data(), dst.data(), 33), std::invalid_argument);
  BOOST_CHECK_THROW(eng::dequantize_row(GgmlType::Q4_K, src.data(), dst.data(), 576), std::invalid_argument);
  BOOST_CHECK_THROW(eng::dot_row(GgmlType::Q8_0, src.data(), dst.data(), -32), std::invalid_argument);
  BOOST_CHECK_THROW(eng::dot_row_portable(GgmlType::Q8_0, src.data(), dst.data(), 31), std::invalid_argument);
  BOOST_CHECK_THROW(eng::dot_row(static_cast<GgmlType>(16), src.data(), dst.data(), 256), std::invalid_argument);
  BOOST_CHECK_THROW(eng::block_size(static_cast<GgmlType>(4)), std::invalid_argument);
  BOOST_TEST(eng::dot_row(GgmlType::Q4_1, src.data(), dst.data(), 0) == 0.0f);
}

// ---- dot_row ---------------------------------------------------------------------------------

namespace {

struct DotCheck {
  double error_dispatched, error_portable;  // relative to sum |w_i x_i|
};

DotCheck check_dot(GgmlType type, std::byte const* row, float const* x, std::int64_t n) {
  std::vector<float> w(static_cast<std::size_t>(n));
  eng::dequantize_row(type, row, w.data(), n);
  double exact = 0, scale = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    exact += static_cast<double>(w[i]) * x[i];
    scale += std::abs(static_cast<double>(w[i]) * x[i]);
  }
  scale = std::max(scale, std::numeric_limits<double>::min());
  return {std::abs(eng::dot_row(type, row, x, n) - exact) / scale,
          std::abs(eng::dot_row_portable(type, row, x, n) - exact) / scale};
}

}  // namespace

BOOST_AUTO_TEST_CASE(dot_row_agrees_with_dequantize_for_every_type_and_length) {
  BOOST_TEST_MESSAGE("dot_row dispatches to: " << eng::dot_row_isa());
  std::mt19937 rng(12345);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (const GgmlType type : all_types) {
    const std::int64_t bs = static_cast<std::int64_t>(eng::block_size(type));
    // One block, odd block counts (the unrolled loops' tails), the model's widths, a long row.
    std::vector<std::int64_t> lengths = {bs, 3 * bs, 7 * bs, 256 * 3, 1536, 8192};
    if (bs == 1) lengths.insert(lengths.end(), {1, 7, 15, 17, 33, 577});  // SIMD tails
    if (bs == 32) lengths.push_back(576);
    for (const std::int64_t n : lengths) {
      if (n % bs != 0) continue;
      BOOST_TEST_CONTEXT(eng::type_name(type) << ", n = " << n) {
        const std::vector<std::byte> row = random_row(type, n, rng);
        std::vector<float> x(static_cast<std::size_t>(n));
        for (float& v : x) v = value(rng);
        const DotCheck c = check_dot(type, row.data(), x.data(), n);
        BOOST_TEST(c.error_dispatched < 1e-5);
        BOOST_TEST(c.error_portable < 1e-5);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(dot_row_accepts_unaligned_rows_and_vectors) {
  // Rows inside a GGUF tensor start at any byte (e.g. Q4_1 rows of 360 bytes), so no kernel may
  // assume alignment.
  std::mt19937 rng(99);
  for (const GgmlType type : all_types) {
    BOOST_TEST_CONTEXT(eng::type_name(type)) {
      const std::int64_t n = 512;
      const std::vector<std::byte> row = random_row(type, n, rng);
      std::vector<std::byte> shifted(row.size() + 3);
      std::memcpy(shifted.data() + 3, row.data(), row.size());
      std::vector<float> x(n + 1);
      for (float& v : x) v = std::uniform_real_distribution<float>(-1, 1)(rng);
      const DotCheck c = check_dot(type, shifted.data() + 3, x.data() + 1, n);
      BOOST_TEST(c.error_dispatched < 1e-5);
      BOOST_TEST(c.error_portable < 1e-5);
    }
  }
}

BOOST_AUTO_TEST_CASE(dot_row_on_the_golden_blocks) {
  // The golden K-quant and Q5 blocks have random scale bytes covering every lane; dot_row must
  // agree with the (golden-exact) dequantization on them too.
  const eng::GgufFile golden = eng::GgufFile::open(golden_path());
  std::vector<float> x(512);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.11f * static_cast<float>(i));
  for (const GgmlType type : all_types) {
    if (type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16) continue;  // random bits: NaNs
    eng::TensorInfo const& t = golden.tensor(std::string(eng::type_name(type)) + ".blocks");
    BOOST_TEST_CONTEXT(t.name) {
      for (std::int64_t r = 0; r < t.rows(); ++r) {
        const DotCheck c = check_dot(type, t.data + r * t.row_bytes(), x.data(), t.row_length());
        BOOST_TEST(c.error_dispatched < 1e-5);
        BOOST_TEST(c.error_portable < 1e-5);
      }
    }
  }
}
