// libFuzzer target: the eval data readers (parse_factoid, parse_prompts, parse_summarize) on
// arbitrary JSONL. The first byte picks the reader; the rest is the file. Only DataError may
// come out; accepted items carry what their task needs.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "eval/datasets.hpp"
#include "fuzz_support.hpp"

using namespace skipllm::engine::eval;
using skipllm::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view const content = skipllm::fuzz::as_text(data + 1, size - 1);
  try {
    switch (data[0] % 3) {
      case 0:
        for (FactoidItem const& item : parse_factoid(content, "fuzz.jsonl").items) {
          require(!item.answers.empty(), "a factoid item without answers");
        }
        break;
      case 1:
        for (PromptItem const& item : parse_prompts(content, "fuzz.jsonl").items) {
          require(!item.messages.empty() && item.messages.back().role == "user",
                  "a prompt not ending with a user turn");
        }
        break;
      default:
        for (SummarizeItem const& item : parse_summarize(content, "fuzz.jsonl").items) {
          require(item.document.find_first_not_of(" \t\r\n") != std::string::npos, "a blank document");
        }
        break;
    }
  } catch (DataError const&) {}
  return 0;
}
