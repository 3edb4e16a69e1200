// Tests of the integer dot products (format/int8_dot): activation quantization in blocks of 32
// and 256, and every code path (portable, AVX2, AVX-512 VNNI where this CPU has them) for every
// quantized weight type against the scalar reference: dequantize_row(w) . (d_b * q_i) in double.
#define BOOST_TEST_MODULE engine_int8_dot
#include <boost/test/unit_test.hpp>

#include "format/int8_dot.hpp"
#include "format/random_blocks.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

namespace eng = skipllm::engine;
using eng::DotIsa;
using eng::GgmlType;
using quant_test::random_row;

namespace {

constexpr GgmlType int8_types[] = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                                   GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};
constexpr DotIsa all_isas[] = {DotIsa::portable, DotIsa::avx2, DotIsa::avx512_vnni};

// The paths this CPU runs; the others are named once, so a log shows what was not covered.
std::vector<DotIsa> isas_here() {
  std::vector<DotIsa> out;
  for (DotIsa const isa : all_isas) {
    if (eng::cpu_supports(isa)) {
      out.push_back(isa);
    } else {
      BOOST_TEST_MESSAGE("this CPU lacks " << eng::isa_name(isa) << ": its kernels are not tested here");
    }
  }
  return out;
}

// Both activation formats of one vector, and the values they stand for (d_b * q_i).
struct Quantized {
  eng::Int8Activations blocks32;
  eng::Int8KActivations blocks256;

  Quantized(std::vector<float> const& x, GgmlType type) {
    auto const n = static_cast<std::int64_t>(x.size());
    if (eng::int8_activation_block(type) == 32) {
      eng::quantize_activations(x.data(), n, blocks32);
    } else {
      eng::quantize_activations(x.data(), n, blocks256);
    }
  }

  std::vector<double> values(GgmlType type) const {
    bool const k = eng::int8_activation_block(type) == 256;
    auto const& q = k ? blocks256.q : blocks32.q;
    auto const& d = k ? blocks256.d : blocks32.d;
    std::size_t const block = k ? 256 : 32;
    std::vector<double> v(q.size());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(d[i / block]) * q[i];
    return v;
  }

  float dot(GgmlType type, std::byte const* row, DotIsa isa) const {
    return eng::int8_activation_block(type) == 32 ? eng::dot_row_int8(type, row, blocks32, isa)
                                                  : eng::dot_row_int8(type, row, blocks256, isa);
  }
};

struct Reference {
  double exact;  // dequantized weights . activation values, in double
  double scale;  // sum |w_i a_i|: the error bound's unit
};

Reference reference(GgmlType type, std::vector<std::byte> const& row, std::vector<double> const& a) {
  std::vector<float> w(a.size());
  eng::dequantize_row(type, row.data(), w.data(), static_cast<std::int64_t>(a.size()));
  Reference r{0, 0};
  for (std::size_t i = 0; i < a.size(); ++i) {
    r.exact += static_cast<double>(w[i]) * a[i];
    r.scale += std::abs(static_cast<double>(w[i]) * a[i]);
  }
  return r;
}

// Every path, for `row` and `x`: within 1e-5 of sum |w a| of the exact reference (the integer part
// is exact; the bound covers the fp32 scaling and accumulation).
void check_all_paths(GgmlType type, std::vector<std::byte> const& row, std::vector<float> const& x) {
  Quantized const q(x, type);
  Reference const ref = reference(type, row, q.values(type));
  for (DotIsa const isa : isas_here()) {
    BOOST_TEST_CONTEXT(eng::isa_name(isa)) {
      double const got = q.dot(type, row.data(), isa);
      BOOST_TEST(std::abs(got - ref.exact) <= 1e-5 * ref.scale + 1e-30,
                 "got " << got << ", reference " << ref.exact << " (scale " << ref.scale << ")");
    }
  }
}

std::vector<float> random_vector(std::int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<std::size_t>(n));
  for (float& v : x) v = dist(rng);
  return x;
}

}  // namespace

// ---- quantize_activations ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(blocks_of_32_round_each_block_to_its_own_scale) {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i)
    x[static_cast<std::size_t>(i)] = (i < 32 ? 0.01f : 3.0f) * std::sin(0.7f * static_cast<float>(i));
  x[40] = -3.0f;  // block 1's largest magnitude
  eng::Int8Activations q;
  eng::quantize_activations(x.data(), 64, q);
  BOOST_TEST(q.n == 64);
  BOOST_TEST(q.d[1] == 3.0f / 127.0f);
  BOOST_TEST(q.q[40] == -127);
  for (int i = 0; i < 64; ++i) {
    float const d = q.d[static_cast<std::size_t>(i / 32)];
    BOOST_TEST(std::abs(x[static_cast<std::size_t>(i)] - q.q[static_cast<std::size_t>(i)] * d) <= 0.5f * d * 1.0001f,
               "element " << i);
  }
  for (std::size_t b = 0; b < 2; ++b) {
    int sum = 0;
    for (std::size_t j = 0; j < 32; ++j) sum += q.q[b * 32 + j];
    BOOST_TEST(q.sum[b] == q.d[b] * static_cast<float>(sum));
  }
  std::vector<float> zeros(32, 0.0f);
  eng::quantize_activations(zeros.data(), 32, q);  // all-zero block: scale 0, no division by zero
  BOOST_TEST(q.n == 32);
  BOOST_TEST(q.d.size() == 1u);
  BOOST_TEST(q.d[0] == 0.0f);
  BOOST_TEST(std::all_of(q.q.begin(), q.q.end(), [](std::int8_t v) { return v == 0; }));
  BOOST_CHECK_THROW(eng::quantize_activations(x.data(), 33, q), std::invalid_argument);
  BOOST_CHECK_THROW(eng::quantize_activations(x.data(), 0, q), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(blocks_of_256_keep_one_scale_and_sums_of_16) {
  std::mt19937 rng(7);
  std::vector<float> x = random_vector(512, rng);
  for (std::size_t i = 256; i < 512; ++i) x[i] *= 1e-3f;  // block 1: a much smaller scale
  x[300] = 0.5f;                                          // ... set by one element
  eng::Int8KActivations q;
  eng::quantize_activations(x.data(), 512, q);
  BOOST_TEST(q.n == 512);
  BOOST_TEST_REQUIRE(q.d.size() == 2u);
  BOOST_TEST_REQUIRE(q.sum16.size() == 32u);
  BOOST_TEST(q.d[1] == 0.5f / 127.0f);
  BOOST_TEST(q.q[300] == 127);
  float amax0 = 0;
  for (std::size_t i = 0; i < 256; ++i) amax0 = std::max(amax0, std::abs(x[i]));
  BOOST_TEST(q.d[0] == amax0 / 127.0f);
  for (std::size_t i = 0; i < 512; ++i) {
    float const d = q.d[i / 256];
    BOOST_TEST(std::abs(q.q[i]) <= 127);
    BOOST_TEST(std::abs(x[i] - static_cast<float>(q.q[i]) * d) <= 0.5f * d * 1.0001f, "element " << i);
  }
  for (std::size_t k = 0; k < 32; ++k) {
    int sum = 0;
    for (std::size_t j = 0; j < 16; ++j) sum += q.q[16 * k + j];
    BOOST_TEST(q.sum16[k] == sum, "sum of 16 #" << k);
  }
  BOOST_CHECK_THROW(eng::quantize_activations(x.data(), 32, q), std::invalid_argument);  // not a multiple of 256
  BOOST_CHECK_THROW(eng::quantize_activations(x.data(), -256, q), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(quantization_rounds_half_to_even_and_never_reaches_minus_128) {
  // With max|x| = 127 the scale is 1 and q = round(x): halves go to the even neighbour.
  std::vector<float> x(256, 0.0f);
  x[0] = 127.0f, x[1] = -127.0f, x[2] = 2.5f, x[3] = -2.5f, x[4] = 3.5f, x[5] = 0.49f;
  eng::Int8KActivations k;
  eng::quantize_activations(x.data(), 256, k);
  eng::Int8Activations b;
  eng::quantize_activations(x.data(), 256, b);
  for (auto const* q : {&k.q, &b.q}) {
    BOOST_TEST((*q)[0] == 127);
    BOOST_TEST((*q)[1] == -127);
    BOOST_TEST((*q)[2] == 2);
    BOOST_TEST((*q)[3] == -2);
    BOOST_TEST((*q)[4] == 4);
    BOOST_TEST((*q)[5] == 0);
  }
}

// ---- dot_row_int8 against the scalar reference ------------------------------------------------

BOOST_AUTO_TEST_CASE(every_path_matches_the_reference_for_every_type_and_block_count) {
  std::mt19937 rng(2024);
  for (GgmlType const type : int8_types) {
    std::int64_t const block = eng::int8_activation_block(type);
    BOOST_TEST_REQUIRE(block == static_cast<std::int64_t>(eng::block_size(type)));
    // One block, odd counts (no loop may assume pairs), the model's widths, a long row.
    std::vector<std::int64_t> counts = {1, 2, 3, 7, 11};
    if (block == 32) counts.insert(counts.end(), {18, 48, 128});
    if (block == 256) counts.insert(counts.end(), {6, 16, 43});
    for (std::int64_t const blocks : counts) {
      BOOST_TEST_CONTEXT(eng::type_name(type) << ", " << blocks << " blocks") {
        for (int trial = 0; trial < 3; ++trial)
          check_all_paths(type, random_row(type, blocks * block, rng), random_vector(blocks * block, rng));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(every_path_is_exact_at_the_integer_extremes) {
  // Largest stored integers (all-ones bytes: nibbles 15, fifth bits set, Q6_K's 63, Q8_0's -1;
  // 0x80 bytes: Q8_0's -128) against activations of +-127: the corner where AVX2's 16-bit pair
  // sums would saturate if a kernel mixed up signed and unsigned operands.
  for (GgmlType const type : int8_types) {
    std::int64_t const n = 3 * eng::int8_activation_block(type);
    for (unsigned const fill : {0xFFu, 0x80u, 0x7Fu, 0x00u}) {
      std::vector<std::byte> row(static_cast<std::size_t>(n) / eng::block_size(type) * eng::block_bytes(type),
                                 static_cast<std::byte>(fill));
      // Scales: 1.0 in every fp16 field (and, for the K-quants, the packed scales stay `fill`).
      for (std::size_t b = 0; b < row.size(); b += eng::block_bytes(type)) {
        std::uint16_t const one = 0x3C00;
        std::size_t const d_at = type == GgmlType::Q6_K ? 208 : 0;
        std::memcpy(&row[b + d_at], &one, 2);
        if (type == GgmlType::Q4_1 || type == GgmlType::Q5_1 || type == GgmlType::Q4_K || type == GgmlType::Q5_K)
          std::memcpy(&row[b + 2], &one, 2);
      }
      for (float const sign_pattern : {1.0f, -1.0f, 0.0f}) {  // 0: alternating signs
        std::vector<float> x(static_cast<std::size_t>(n));
        for (std::size_t i = 0; i < x.size(); ++i)
          x[i] = sign_pattern != 0 ? sign_pattern * 127.0f : (i % 2 ? -127.0f : 127.0f);
        BOOST_TEST_CONTEXT(eng::type_name(type)
                           << ", bytes 0x" << std::hex << fill << std::dec << ", x sign " << sign_pattern) {
          check_all_paths(type, row, x);
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(paths_agree_with_each_other_and_with_the_float_product) {
  std::mt19937 rng(99);
  for (GgmlType const type : int8_types) {
    std::int64_t const n = 6 * 256;  // a multiple of both block sizes
    auto const row = random_row(type, n, rng);
    auto const x = random_vector(n, rng);
    Quantized const q(x, type);
    float const portable = q.dot(type, row.data(), DotIsa::portable);
    std::vector<float> w(static_cast<std::size_t>(n));
    eng::dequantize_row(type, row.data(), w.data(), n);
    double scale = 0;
    for (std::size_t i = 0; i < w.size(); ++i) scale += std::abs(static_cast<double>(w[i]) * x[i]);
    BOOST_TEST_CONTEXT(eng::type_name(type)) {
      for (DotIsa const isa : isas_here())
        BOOST_TEST(std::abs(q.dot(type, row.data(), isa) - portable) <= 1e-5 * scale, eng::isa_name(isa));
      // The activation rounding moves the product by a small fraction of sum |w x|.
      BOOST_TEST(std::abs(portable - eng::dot_row(type, row.data(), x.data(), n)) <= 0.02 * scale);
    }
  }
}

BOOST_AUTO_TEST_CASE(rows_need_no_alignment) {
  std::mt19937 rng(5);
  for (GgmlType const type : int8_types) {
    std::int64_t const n = 3 * eng::int8_activation_block(type);
    auto const row = random_row(type, n, rng);
    std::vector<std::byte> shifted(row.size() + 1);
    std::copy(row.begin(), row.end(), shifted.begin() + 1);
    Quantized const q(random_vector(n, rng), type);
    for (DotIsa const isa : isas_here()) {
      BOOST_TEST(q.dot(type, shifted.data() + 1, isa) == q.dot(type, row.data(), isa),
                 eng::type_name(type) << " " << eng::isa_name(isa));
    }
  }
}

// ---- Dispatch and refusals -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(the_chosen_path_is_the_fastest_supported_and_can_be_forced) {
  BOOST_TEST_MESSAGE("dot_row_int8 runs " << eng::isa_name(eng::int8_dot_isa()));
  if (std::getenv("SKIPLLM_INT8_ISA") == nullptr) {
    DotIsa best = DotIsa::portable;
    for (DotIsa const isa : all_isas)
      if (eng::cpu_supports(isa)) best = isa;
    BOOST_TEST(eng::isa_name(eng::int8_dot_isa()) == eng::isa_name(best));
  }
  std::mt19937 rng(3);
  auto const row = random_row(GgmlType::Q4_K, 512, rng);
  Quantized const q(random_vector(512, rng), GgmlType::Q4_K);
  DotIsa const before = eng::int8_dot_isa();
  for (DotIsa const isa : isas_here()) {
    eng::set_int8_dot_isa(isa);
    BOOST_TEST(eng::isa_name(eng::int8_dot_isa()) == eng::isa_name(isa));
    BOOST_TEST(eng::dot_row_int8(GgmlType::Q4_K, row.data(), q.blocks256) == q.dot(GgmlType::Q4_K, row.data(), isa));
  }
  for (DotIsa const isa : all_isas) {
    if (!eng::cpu_supports(isa)) {
      BOOST_CHECK_THROW(eng::set_int8_dot_isa(isa), std::invalid_argument);
      BOOST_CHECK_THROW(q.dot(GgmlType::Q4_K, row.data(), isa), std::invalid_argument);
    }
  }
  eng::set_int8_dot_isa(before);
  // The resolved kernels are the chosen path's.
  BOOST_TEST(eng::int8k_row_dot(GgmlType::Q4_K)(row.data(), q.blocks256) == q.dot(GgmlType::Q4_K, row.data(), before));
  auto const row32 = random_row(GgmlType::Q5_1, 512, rng);
  Quantized const q32(random_vector(512, rng), GgmlType::Q5_1);
  BOOST_TEST(eng::int8_row_dot(GgmlType::Q5_1)(row32.data(), q32.blocks32) ==
             q32.dot(GgmlType::Q5_1, row32.data(), before));
  BOOST_CHECK_THROW(eng::int8_row_dot(GgmlType::Q6_K), std::invalid_argument);
  BOOST_CHECK_THROW(eng::int8k_row_dot(GgmlType::Q8_0), std::invalid_argument);
  BOOST_CHECK_THROW(eng::int8_row_dot(GgmlType::F16), std::invalid_argument);
  for (DotIsa const isa : all_isas) BOOST_TEST((eng::parse_isa(eng::isa_name(isa)) == isa));
  BOOST_TEST(!eng::parse_isa("avx512").has_value());
}

BOOST_AUTO_TEST_CASE(mismatched_operands_are_refused) {
  std::vector<float> x(256, 1.0f);
  eng::Int8Activations b32;
  eng::Int8KActivations b256;
  eng::quantize_activations(x.data(), 256, b32);
  eng::quantize_activations(x.data(), 256, b256);
  std::vector<std::byte> row(256 * 4);
  for (GgmlType const type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16}) {
    BOOST_TEST(!eng::supports_int8_dot(type));
    BOOST_CHECK_THROW(eng::dot_row_int8(type, row.data(), b32), std::invalid_argument);
    BOOST_CHECK_THROW(eng::dot_row_int8(type, row.data(), b256), std::invalid_argument);
  }
  for (GgmlType const type : int8_types) BOOST_TEST(eng::supports_int8_dot(type));
  // A K-quant with blocks of 32, a Q4_0 row with blocks of 256: the wrong format for the type.
  BOOST_CHECK_THROW(eng::dot_row_int8(GgmlType::Q4_K, row.data(), b32), std::invalid_argument);
  BOOST_CHECK_THROW(eng::dot_row_int8(GgmlType::Q4_0, row.data(), b256), std::invalid_argument);
  eng::Int8Activations empty;
  BOOST_CHECK_THROW(eng::dot_row_int8(GgmlType::Q4_0, row.data(), empty), std::invalid_argument);
}
