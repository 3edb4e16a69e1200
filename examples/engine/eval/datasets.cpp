#include "eval/datasets.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>

#include "eval/eval_metrics.hpp"
#include "format/json_reader.hpp"

namespace skipllm::engine::eval {

namespace {

using Json = nlohmann::json;

struct JsonLine {
  std::size_t line;
  Json value;  //!< an object
};

std::string where(std::string const& name, std::size_t line) { return name + ":" + std::to_string(line) + ": "; }

std::vector<JsonLine> parse_jsonl(std::string_view content, std::string const& name, DataFile& file) {
  std::vector<JsonLine> out;
  file.path = name;
  file.lines = 0;
  std::size_t pos = 0;
  while (pos < content.size()) {
    std::size_t end = content.find('\n', pos);
    if (end == std::string_view::npos) end = content.size();
    std::string_view text = content.substr(pos, end - pos);
    pos = end + 1;
    ++file.lines;
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (file.lines == 1 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // BOM
    if (text.find_first_not_of(" \t") == std::string_view::npos) continue;
    Json v;
    try {
      v = parse_json(text);
    } catch (JsonSyntaxError const& e) {
      std::string const column = e.column == 0 ? "" : " at column " + std::to_string(e.column);
      throw DataError(where(name, file.lines) + "invalid JSON: " + e.reason + column);
    }
    if (!v.is_object()) throw DataError(where(name, file.lines) + "expected a JSON object per line");
    out.push_back({file.lines, std::move(v)});
  }
  return out;
}

//! The member `key` of an object, or nullptr (also when `object` is not an object).
Json const* member(Json const& object, char const* key) {
  if (!object.is_object()) return nullptr;
  auto const it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string const* string_member(JsonLine const& l, char const* key, std::string const& name, bool required) {
  Json const* v = member(l.value, key);
  if (v == nullptr || v->is_null()) {
    if (required) throw DataError(where(name, l.line) + "missing \"" + key + "\"");
    return nullptr;
  }
  if (!v->is_string()) throw DataError(where(name, l.line) + "\"" + key + "\" must be a string");
  return v->get_ptr<std::string const*>();
}

std::string item_id(JsonLine const& l, std::string const& name) {
  Json const* v = member(l.value, "id");
  if (v == nullptr || v->is_null()) return "line" + std::to_string(l.line);
  if (v->is_string()) return v->get<std::string>();
  if (v->is_number()) {
    std::ostringstream os;
    os << v->get<double>();
    return os.str();
  }
  throw DataError(where(name, l.line) + "\"id\" must be a string or a number");
}

std::string read_whole(std::filesystem::path const& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw DataError(path.string() + ": is a directory, not a data file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path.string() + ": cannot open the data file");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw DataError(path.string() + ": read error");
  return s;
}

bool blank(std::string const& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

// The messages of a {"messages": [...]} line, the final assistant message moved to the reference.
void read_conversation(JsonLine const& l, Json const& messages, std::string const& name, PromptItem& item) {
  if (!messages.is_array() || messages.empty()) {
    throw DataError(where(name, l.line) + "\"messages\" must be a non-empty array");
  }
  for (std::size_t k = 0; k < messages.size(); ++k) {
    Json const* role = member(messages[k], "role");
    Json const* text = member(messages[k], "content");
    if (role == nullptr || text == nullptr || !role->is_string() || !text->is_string()) {
      throw DataError(where(name, l.line) + "messages[" + std::to_string(k) +
                      "] must be an object with string \"role\" and \"content\"");
    }
    std::string const r = role->get<std::string>();
    if (r != "system" && r != "user" && r != "assistant") {
      throw DataError(where(name, l.line) + "messages[" + std::to_string(k) + "]: unknown role \"" + r +
                      "\" (system, user or assistant)");
    }
    item.messages.push_back({r, text->get<std::string>()});
  }
  if (item.messages.back().role == "assistant") {
    if (item.reference)
      throw DataError(where(name, l.line) + "both \"reference\" and a final assistant message; give one");
    item.reference = item.messages.back().content;
    item.messages.pop_back();
  }
  if (item.messages.empty() || item.messages.back().role != "user") {
    throw DataError(
        where(name, l.line) +
        "the conversation must end with a user message (optionally followed by the reference assistant message)");
  }
}

}  // namespace

Dataset<FactoidItem> parse_factoid(std::string_view content, std::string const& name) {
  Dataset<FactoidItem> d;
  for (JsonLine const& l : parse_jsonl(content, name, d.file)) {
    FactoidItem item;
    item.line = l.line;
    item.id = item_id(l, name);
    item.question = *string_member(l, "question", name, true);
    if (blank(item.question)) throw DataError(where(name, l.line) + "\"question\" is empty");
    Json const* answers = member(l.value, "answers");
    if (answers == nullptr) throw DataError(where(name, l.line) + "missing \"answers\"");
    if (!answers->is_array() || answers->empty()) {
      throw DataError(where(name, l.line) + "\"answers\" must be a non-empty array of strings");
    }
    for (Json const& a : *answers) {
      if (!a.is_string()) throw DataError(where(name, l.line) + "\"answers\" must be a non-empty array of strings");
      std::string const answer = a.get<std::string>();
      if (normalize_text(answer).empty()) {
        throw DataError(where(name, l.line) + "answer \"" + answer + "\" has no letters or digits to match");
      }
      item.answers.push_back(answer);
    }
    d.items.push_back(std::move(item));
  }
  return d;
}

Dataset<PromptItem> parse_prompts(std::string_view content, std::string const& name) {
  Dataset<PromptItem> d;
  for (JsonLine const& l : parse_jsonl(content, name, d.file)) {
    PromptItem item;
    item.line = l.line;
    item.id = item_id(l, name);
    if (std::string const* r = string_member(l, "reference", name, false)) item.reference = *r;
    std::string const* prompt = string_member(l, "prompt", name, false);
    Json const* messages = member(l.value, "messages");
    if ((prompt != nullptr) == (messages != nullptr)) {
      throw DataError(where(name, l.line) +
                      "expected exactly one of \"prompt\" (a string) and \"messages\" (an array)");
    }
    if (prompt != nullptr) {
      if (std::string const* system = string_member(l, "system", name, false))
        item.messages.push_back({"system", *system});
      item.messages.push_back({"user", *prompt});
    } else {
      read_conversation(l, *messages, name, item);
    }
    if (blank(item.messages.back().content)) throw DataError(where(name, l.line) + "the prompt is empty");
    d.items.push_back(std::move(item));
  }
  return d;
}

Dataset<SummarizeItem> parse_summarize(std::string_view content, std::string const& name) {
  Dataset<SummarizeItem> d;
  for (JsonLine const& l : parse_jsonl(content, name, d.file)) {
    SummarizeItem item;
    item.line = l.line;
    item.id = item_id(l, name);
    item.document = *string_member(l, "document", name, true);
    if (blank(item.document)) throw DataError(where(name, l.line) + "\"document\" is empty");
    if (std::string const* r = string_member(l, "reference", name, false)) item.reference = *r;
    d.items.push_back(std::move(item));
  }
  return d;
}

Dataset<FactoidItem> read_factoid(std::filesystem::path const& path) {
  return parse_factoid(read_whole(path), path.string());
}
Dataset<PromptItem> read_prompts(std::filesystem::path const& path) {
  return parse_prompts(read_whole(path), path.string());
}
Dataset<SummarizeItem> read_summarize(std::filesystem::path const& path) {
  return parse_summarize(read_whole(path), path.string());
}

std::string read_text(std::filesystem::path const& path, DataFile& file) {
  std::string text = read_whole(path);
  file.path = path.string();
  file.lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) +
               (!text.empty() && text.back() != '\n' ? 1 : 0);
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.erase(0, 3);
  if (blank(text)) throw DataError(path.string() + ": the text is empty");
  return text;
}

}  // namespace skipllm::engine::eval
