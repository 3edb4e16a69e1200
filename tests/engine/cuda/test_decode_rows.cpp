// CudaGenerator's host-side checks (cuda/decode_rows.hpp), without a GPU: a decode step of
// several sequences is refused, naming why, before anything runs.
#define BOOST_TEST_MODULE engine_cuda_decode_rows
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/decode_rows.hpp"

namespace eng = skipllm::engine;

namespace {

constexpr int kVocab = 10, kContext = 8;

// Slots 0 and 2 hold sequences at positions 3 and 7 (one short of a full context of 8); slot 1
// has none.
std::vector<int> const positions = {3, -1, 7};

void check(std::vector<int> const& slots, std::vector<std::int32_t> const& tokens) {
  eng::check_decode_rows(slots, tokens, positions, kVocab, kContext);
}

template <class E>
bool refused(std::vector<int> const& slots, std::vector<std::int32_t> const& tokens, std::string const& words) {
  try {
    check(slots, tokens);
  } catch (E const& e) {
    BOOST_TEST(std::string(e.what()).find(words) != std::string::npos, e.what());
    return true;
  }
  return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(valid_steps_pass_in_any_row_order) {
  BOOST_CHECK_NO_THROW(check({0}, {1}));
  BOOST_CHECK_NO_THROW(check({2, 0}, {9, 0}));  // not in slot order; slot 2 has one position left
}

BOOST_AUTO_TEST_CASE(bad_steps_are_refused_with_the_reason) {
  BOOST_TEST(refused<std::invalid_argument>({}, {}, "at least one row"));
  BOOST_TEST(refused<std::invalid_argument>({0, 2}, {1}, "one token per slot"));
  BOOST_TEST(refused<std::invalid_argument>({0, 2, 0, 2}, {1, 1, 1, 1}, "at most 3 sequences"));
  BOOST_TEST(refused<std::invalid_argument>({0, 0}, {1, 1}, "slot 0 appears twice"));
  BOOST_TEST(refused<std::invalid_argument>({0, 1}, {1, 1}, "slot 1 has no sequence"));
  BOOST_TEST(refused<std::out_of_range>({0, 3}, {1, 1}, "slot 3 is outside [0, 3)"));
  BOOST_TEST(refused<std::out_of_range>({-1}, {1}, "slot -1"));
  BOOST_TEST(refused<std::out_of_range>({0}, {kVocab}, "outside the vocabulary of 10"));
  BOOST_TEST(refused<std::out_of_range>({0}, {-1}, "token id -1"));
}

BOOST_AUTO_TEST_CASE(a_full_context_is_a_length_error) {
  std::vector<int> const full = {8};
  BOOST_CHECK_THROW(eng::check_decode_rows(std::vector<int>{0}, std::vector<std::int32_t>{1}, full, kVocab, kContext),
                    std::length_error);
  BOOST_TEST(eng::checked_slot(2, 3) == 2u);
  BOOST_TEST(eng::checked_token(9, kVocab) == 9);
}
