// The data of `skipllm eval` and `skipllm calibrate` (docs/eval.md): JSONL files of factoid
// questions, conversations and documents to summarize, and plain text. Read through the engine's
// JSON reader (format/json_reader); anything a task cannot use is a DataError naming the file and
// line, so a bad line is found before the model is loaded.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "format/tokenizer.hpp"

namespace skipllm::engine::eval {

//! A data file that cannot be used; what() names the file and line ("FILE:12: ...").
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct DataFile {
  std::string path;
  std::size_t lines = 0;  //!< physical lines of the file (for JSONL: blank lines included)
};

//! {"question": "...", "answers": ["...", ...]} per line; optional "id".
struct FactoidItem {
  std::string id;
  std::string question;
  std::vector<std::string> answers;
  std::size_t line = 0;
};

//! A conversation to continue: {"prompt": "..."} (one user message, optional "system") or
//! {"messages": [{"role": "...", "content": "..."}, ...]}. A final assistant message is taken
//! off and kept as the reference. Optional "id" and "reference".
struct PromptItem {
  std::string id;
  std::vector<ChatMessage> messages;  //!< ends with a user message
  std::optional<std::string> reference;
  std::size_t line = 0;
};

//! {"document": "...", "reference": "..." (optional), "id": "..." (optional)}.
struct SummarizeItem {
  std::string id;
  std::string document;
  std::optional<std::string> reference;
  std::size_t line = 0;
};

template <class Item>
struct Dataset {
  DataFile file;
  std::vector<Item> items;
};

//! Parsers of JSONL `content`; `name` is used in messages. Blank lines are skipped; anything
//! else that is not a JSON object of the expected shape throws DataError naming the line. Other
//! members of a line are ignored; a repeated member counts with its last value.
Dataset<FactoidItem> parse_factoid(std::string_view content, std::string const& name);
Dataset<PromptItem> parse_prompts(std::string_view content, std::string const& name);
Dataset<SummarizeItem> parse_summarize(std::string_view content, std::string const& name);

//! The same, reading `path` (DataError when it cannot be read).
Dataset<FactoidItem> read_factoid(std::filesystem::path const& path);
Dataset<PromptItem> read_prompts(std::filesystem::path const& path);
Dataset<SummarizeItem> read_summarize(std::filesystem::path const& path);
//! A plain-text file, whole; `file` receives its path and line count.
std::string read_text(std::filesystem::path const& path, DataFile& file);

}  // namespace skipllm::engine::eval
