#include "format/json_reader.hpp"

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

namespace skipllm::engine {

namespace {

// nlohmann's what() reads "[json.exception.parse_error.101] parse error at line 1, column 9:
// <reason>"; the reason is what a reader of our messages needs.
std::string reason_of(nlohmann::json::exception const& e) {
  std::string_view const what = e.what();
  std::size_t const column = what.find("column ");
  std::size_t const colon = what.find(": ", column == std::string_view::npos ? 0 : column);
  if (colon != std::string_view::npos && column != std::string_view::npos) return std::string(what.substr(colon + 2));
  std::size_t const tag = what.find("] ");
  return std::string(tag == std::string_view::npos ? what : what.substr(tag + 2));
}

// nlohmann counts `byte` as the characters read, the failing one included.
std::pair<std::size_t, std::size_t> line_and_column(std::string_view text, std::size_t byte) {
  std::size_t const end = std::min(byte, text.size() + 1);
  std::size_t line = 1, line_start = 0;
  for (std::size_t i = 0; i + 1 < end; ++i) {
    if (text[i] == '\n') ++line, line_start = i + 1;
  }
  return {line, end - line_start};
}

// A parser callback that throws on the second occurrence of a key in one object. It tracks the
// open containers to name the key's path.
class DuplicateKeyCheck {
 public:
  bool operator()(int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    switch (event) {
      case Event::object_start: open_.push_back({true, {}, {}}); break;
      case Event::array_start: open_.push_back({false, {}, {}}); break;
      case Event::object_end:
      case Event::array_end: open_.pop_back(); break;
      case Event::key: {
        Container& object = open_.back();
        object.key = parsed.get<std::string>();
        if (!object.keys.insert(object.key).second) throw JsonSyntaxError("duplicate key " + path(), 0, 0);
        break;
      }
      case Event::value: break;
    }
    return true;
  }

 private:
  struct Container {
    bool object;
    std::set<std::string> keys;
    std::string key;  //!< the member being read
  };

  std::string path() const {
    std::string p;
    for (Container const& c : open_) {
      if (!c.object) {
        p += "[]";
        continue;
      }
      if (!p.empty()) p += '.';
      p += c.key;
    }
    return p;
  }

  std::vector<Container> open_;
};

}  // namespace

JsonSyntaxError::JsonSyntaxError(std::string reason_, std::size_t line_, std::size_t column_)
    : std::runtime_error(
          line_ == 0 ? reason_ : reason_ + " at line " + std::to_string(line_) + ", column " + std::to_string(column_)),
      reason(std::move(reason_)),
      line(line_),
      column(column_) {}

nlohmann::json parse_json(std::string_view text, DuplicateKeys duplicates) {
  try {
    if (duplicates == DuplicateKeys::reject) return nlohmann::json::parse(text, DuplicateKeyCheck{});
    return nlohmann::json::parse(text);
  } catch (nlohmann::json::parse_error const& e) {
    auto const [line, column] = line_and_column(text, e.byte);
    throw JsonSyntaxError(reason_of(e), line, column);
  } catch (nlohmann::json::exception const& e) {  // e.g. a number too large for a double
    throw JsonSyntaxError(reason_of(e), 0, 0);
  }
}

}  // namespace skipllm::engine
