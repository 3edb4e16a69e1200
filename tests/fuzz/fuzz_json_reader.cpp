// libFuzzer target: the engine's JSON reader (parse_json) on arbitrary text, in both duplicate
// key modes. Only JsonSyntaxError may come out; a text accepted with duplicates rejected is
// accepted with the last one winning, to the same value, and one refused only when duplicates
// are rejected is refused for a duplicate key. An error's position lies inside the text.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "format/json_reader.hpp"
#include "fuzz_support.hpp"

using namespace skipllm::engine;
using skipllm::fuzz::require;

namespace {

struct Outcome {
  std::optional<nlohmann::json> value;
  std::string reason;  //!< when refused
};

Outcome parse(std::string_view text, DuplicateKeys duplicates) {
  try {
    return {parse_json(text, duplicates), {}};
  } catch (JsonSyntaxError const& e) {
    require(e.line == 0 || e.column >= 1, "an error at a line but column 0");
    std::size_t lines = 1;
    for (char const c : text) lines += c == '\n' ? 1 : 0;
    require(e.line <= lines, "an error line past the end of the text");
    return {std::nullopt, e.reason};
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  std::string_view const text = skipllm::fuzz::as_text(data, size);
  Outcome const lenient = parse(text, DuplicateKeys::last_wins);
  Outcome const strict = parse(text, DuplicateKeys::reject);
  if (strict.value) {
    require(lenient.value.has_value() && *lenient.value == *strict.value,
            "accepted with duplicates rejected but not alike with the last winning");
  } else if (lenient.value) {
    require(strict.reason.rfind("duplicate key", 0) == 0, "refused only in reject mode, not for a duplicate key");
  }
  if (lenient.value) (void)lenient.value->dump();
  return 0;
}
