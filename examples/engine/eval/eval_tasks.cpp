#include "eval/eval_tasks.hpp"
#include "eval/timing.hpp"
#include "format/tokenizer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <ostream>
#include <sstream>

#include <skipllm/policy/describe.hpp>

namespace skipllm::engine::eval {

namespace {

double nan() { return std::numeric_limits<double>::quiet_NaN(); }

// ---- JSON parser ---------------------------------------------------------------------------------

class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : s_(text) {}

  JsonValue document() {
    skip_space();
    JsonValue v = value(0);
    skip_space();
    if (i_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  [[noreturn]] void fail(std::string const& what) const {
    throw std::invalid_argument(what + " at column " + std::to_string(i_ + 1));
  }

  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }

  void expect(char c) {
    if (i_ >= s_.size() || s_[i_] != c) {
      fail(std::string("expected '") + c + "'" + (i_ >= s_.size() ? " but the line ended" : ""));
    }
    ++i_;
  }

  JsonValue value(int depth) {
    if (depth > kMaxDepth) fail("JSON nested too deeply");
    if (i_ >= s_.size()) fail("expected a value but the line ended");
    JsonValue v;
    char const c = s_[i_];
    if (c == '{') {
      v.kind = JsonValue::Kind::object;
      ++i_;
      skip_space();
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        return v;
      }
      for (;;) {
        skip_space();
        if (i_ >= s_.size() || s_[i_] != '"') fail("expected a member name in double quotes");
        std::string key = string();
        skip_space();
        expect(':');
        skip_space();
        JsonValue member = value(depth + 1);
        v.object.emplace_back(std::move(key), std::move(member));
        skip_space();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == '}') {
          ++i_;
          return v;
        }
        fail("expected ',' or '}' in an object");
      }
    }
    if (c == '[') {
      v.kind = JsonValue::Kind::array;
      ++i_;
      skip_space();
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return v;
      }
      for (;;) {
        skip_space();
        v.array.push_back(value(depth + 1));
        skip_space();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == ']') {
          ++i_;
          return v;
        }
        fail("expected ',' or ']' in an array");
      }
    }
    if (c == '"') {
      v.kind = JsonValue::Kind::string;
      v.string = string();
      return v;
    }
    if (literal("true")) {
      v.kind = JsonValue::Kind::boolean;
      v.boolean = true;
      return v;
    }
    if (literal("false")) {
      v.kind = JsonValue::Kind::boolean;
      return v;
    }
    if (literal("null")) return v;
    if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = JsonValue::Kind::number;
      v.number = number();
      return v;
    }
    fail(std::string("unexpected character '") + c + "'");
  }

  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  double number() {
    std::size_t const start = i_;
    auto const digits = [&] {
      std::size_t const from = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      return i_ - from;
    };
    if (s_[i_] == '-') ++i_;
    if (i_ < s_.size() && s_[i_] == '0') {
      ++i_;
    } else if (digits() == 0) {
      fail("malformed number");
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (digits() == 0) fail("malformed number");
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (digits() == 0) fail("malformed number");
    }
    return std::strtod(std::string(s_.substr(start, i_ - start)).c_str(), nullptr);
  }

  unsigned hex4() {
    if (i_ + 4 > s_.size()) fail("truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      char const h = s_[i_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<unsigned>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<unsigned>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<unsigned>(h - 'A' + 10);
      else fail("bad hex digit in a \\u escape");
    }
    return v;
  }

  std::string string() {
    expect('"');
    std::string out;
    for (;;) {
      if (i_ >= s_.size()) fail("unterminated string");
      char const c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) {
        --i_;
        fail("control character in a string (escape it)");
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) fail("unterminated escape");
      char const e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.substr(i_, 2) != "\\u") fail("unpaired surrogate in a \\u escape");
            i_ += 2;
            unsigned const low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail("unpaired surrogate in a \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("unpaired surrogate in a \\u escape");
          }
          append_utf8(out, cp);
          break;
        }
        default: --i_; fail(std::string("unknown escape '\\") + e + "'");
      }
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

// ---- JSONL ---------------------------------------------------------------------------------------

struct JsonLine {
  std::size_t line;
  JsonValue value;
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
    JsonValue v;
    try {
      v = JsonParser(text).document();
    } catch (std::invalid_argument const& e) {
      throw DataError(where(name, file.lines) + "invalid JSON: " + e.what());
    }
    if (v.kind != JsonValue::Kind::object) throw DataError(where(name, file.lines) + "expected a JSON object per line");
    out.push_back({file.lines, std::move(v)});
  }
  return out;
}

std::string const* string_member(JsonLine const& l, char const* key, std::string const& name, bool required) {
  JsonValue const* v = l.value.find(key);
  if (v == nullptr || v->kind == JsonValue::Kind::null) {
    if (required) throw DataError(where(name, l.line) + "missing \"" + key + "\"");
    return nullptr;
  }
  if (v->kind != JsonValue::Kind::string) throw DataError(where(name, l.line) + "\"" + key + "\" must be a string");
  return &v->string;
}

std::string item_id(JsonLine const& l, std::string const& name) {
  JsonValue const* v = l.value.find("id");
  if (v == nullptr || v->kind == JsonValue::Kind::null) return "line" + std::to_string(l.line);
  if (v->kind == JsonValue::Kind::string) return v->string;
  if (v->kind == JsonValue::Kind::number) {
    std::ostringstream os;
    os << v->number;
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

}  // namespace

JsonValue const* JsonValue::find(std::string_view key) const {
  JsonValue const* found = nullptr;
  for (auto const& [k, v] : object) {
    if (k == key) found = &v;
  }
  return found;
}

JsonValue parse_json(std::string_view text) { return JsonParser(text).document(); }

// ---- Data ----------------------------------------------------------------------------------------

Dataset<FactoidItem> parse_factoid(std::string_view content, std::string const& name) {
  Dataset<FactoidItem> d;
  for (JsonLine const& l : parse_jsonl(content, name, d.file)) {
    FactoidItem item;
    item.line = l.line;
    item.id = item_id(l, name);
    item.question = *string_member(l, "question", name, true);
    if (blank(item.question)) throw DataError(where(name, l.line) + "\"question\" is empty");
    JsonValue const* answers = l.value.find("answers");
    if (answers == nullptr) throw DataError(where(name, l.line) + "missing \"answers\"");
    if (answers->kind != JsonValue::Kind::array || answers->array.empty()) {
      throw DataError(where(name, l.line) + "\"answers\" must be a non-empty array of strings");
    }
    for (JsonValue const& a : answers->array) {
      if (a.kind != JsonValue::Kind::string) {
        throw DataError(where(name, l.line) + "\"answers\" must be a non-empty array of strings");
      }
      if (normalize_text(a.string).empty()) {
        throw DataError(where(name, l.line) + "answer \"" + a.string + "\" has no letters or digits to match");
      }
      item.answers.push_back(a.string);
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
    JsonValue const* messages = l.value.find("messages");
    if ((prompt != nullptr) == (messages != nullptr)) {
      throw DataError(where(name, l.line) + "expected exactly one of \"prompt\" (a string) and \"messages\" (an array)");
    }
    if (prompt != nullptr) {
      if (std::string const* system = string_member(l, "system", name, false)) item.messages.push_back({"system", *system});
      item.messages.push_back({"user", *prompt});
    } else {
      if (messages->kind != JsonValue::Kind::array || messages->array.empty()) {
        throw DataError(where(name, l.line) + "\"messages\" must be a non-empty array");
      }
      for (std::size_t k = 0; k < messages->array.size(); ++k) {
        JsonValue const& m = messages->array[k];
        JsonValue const* role = m.find("role");
        JsonValue const* text = m.find("content");
        if (m.kind != JsonValue::Kind::object || role == nullptr || text == nullptr ||
            role->kind != JsonValue::Kind::string || text->kind != JsonValue::Kind::string) {
          throw DataError(where(name, l.line) + "messages[" + std::to_string(k) +
                          "] must be an object with string \"role\" and \"content\"");
        }
        if (role->string != "system" && role->string != "user" && role->string != "assistant") {
          throw DataError(where(name, l.line) + "messages[" + std::to_string(k) + "]: unknown role \"" + role->string +
                          "\" (system, user or assistant)");
        }
        item.messages.push_back({role->string, text->string});
      }
      if (item.messages.back().role == "assistant") {
        if (item.reference) {
          throw DataError(where(name, l.line) + "both \"reference\" and a final assistant message; give one");
        }
        item.reference = item.messages.back().content;
        item.messages.pop_back();
      }
      if (item.messages.empty() || item.messages.back().role != "user") {
        throw DataError(where(name, l.line) + "the conversation must end with a user message (optionally followed by "
                                              "the reference assistant message)");
      }
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

Dataset<FactoidItem> read_factoid(std::filesystem::path const& path) { return parse_factoid(read_whole(path), path.string()); }
Dataset<PromptItem> read_prompts(std::filesystem::path const& path) { return parse_prompts(read_whole(path), path.string()); }
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

// ---- Generation ----------------------------------------------------------------------------------

std::vector<std::int32_t> chat_prompt_tokens(EvalModel const& m, std::span<ChatMessage const> messages) {
  std::vector<std::int32_t> ids;
  if (m.add_bos && m.tokenizer.bos_id() >= 0) ids.push_back(m.tokenizer.bos_id());
  std::vector<std::int32_t> const body = m.tokenizer.encode(apply_chat_template(messages, true), true);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

std::string summarize_prompt(std::string_view document) {
  std::string p(kSummarizeInstruction);
  p += "\n\n";
  p += document;
  while (!p.empty() && (p.back() == '\n' || p.back() == ' ' || p.back() == '\r')) p.pop_back();
  return p;
}

Generation generate_greedy(Generator& generator, Tokenizer const& tokenizer, std::span<std::int32_t const> prompt,
                           int max_tokens) {
  Generation g;
  g.prompt_tokens = prompt.size();
  skipllm::SkipStatistics const& stats = generator.stack().statistics();
  std::uint64_t const skipped0 = stats.skipped_blocks(), blocks0 = stats.ffn_blocks();
  SamplingOptions const greedy;
  std::mt19937_64 rng(0);
  std::span<float const> logits = generator.prefill(prompt);
  Utf8StreamDecoder utf8;
  g.stop_reason = "max_tokens";
  while (static_cast<int>(g.tokens.size()) < max_tokens) {
    std::int32_t const token = sample(logits, greedy, rng);
    if (tokenizer.is_eog(token)) {
      g.stop_reason = "eos";
      break;
    }
    g.tokens.push_back(token);
    g.text += utf8.push(tokenizer.token_piece(token));
    if (static_cast<int>(g.tokens.size()) >= max_tokens) break;
    if (generator.position() >= generator.max_context()) {
      g.stop_reason = "context_full";
      break;
    }
    logits = generator.decode(token);
  }
  g.text += utf8.flush();
  g.skipped_blocks = stats.skipped_blocks() - skipped0;
  g.ffn_blocks = stats.ffn_blocks() - blocks0;
  return g;
}

void RunStats::set_statistics(skipllm::SkipStatistics const& s) {
  statistics = s;
  skip_ratio = s.skip_ratio();
  skip_ratio_eligible = s.skip_ratio_eligible();
  skip_ratio_after_warmup = s.skip_ratio_after_warmup();
}

namespace {

// The context a generator needs for prompts of up to `longest` tokens plus `max_tokens`.
int context_for(EvalModel const& m, std::size_t longest, int max_tokens) {
  std::int64_t const want = static_cast<std::int64_t>(longest) + max_tokens + 1;
  return static_cast<int>(std::clamp<std::int64_t>(want, 2, std::max(m.max_context, 2)));
}

void check_fits(std::size_t tokens, int context, std::string const& what) {
  if (tokens >= static_cast<std::size_t>(context)) {
    throw DataError(what + ": the prompt has " + std::to_string(tokens) + " tokens but the context holds " +
                    std::to_string(context) + " (raise --ctx)");
  }
}

}  // namespace

bool can_skip(ConfigurablePolicies const& p) {
  using Kind = skipllm::policy::AnySkip::Kind;
  switch (p.skip.kind()) {
    case Kind::greedy: return p.skip.greedy()->spans_per_token > 0;
    case Kind::layer_thresholds: return p.skip.layer_thresholds()->spans_per_token > 0;
    case Kind::random_window: return true;
    case Kind::static_mask: return p.skip.static_mask()->layers.count() > 0;
    case Kind::dense: break;
  }
  return false;
}

ConfigurablePolicies dense_version(ConfigurablePolicies p) {
  p.skip = skipllm::policy::Dense{};
  return p;
}

// ---- factoid -------------------------------------------------------------------------------------

FactoidResult run_factoid(EvalModel const& m, ConfigurablePolicies const& policies, std::span<FactoidItem const> items,
                          FactoidOptions const& options, ProgressFn const& progress) {
  Clock::time_point const start = Clock::now();
  std::vector<std::vector<std::int32_t>> prompts;
  std::size_t longest = 0;
  for (FactoidItem const& item : items) {
    std::vector<ChatMessage> messages;
    if (options.system) messages.push_back({"system", *options.system});
    messages.push_back({"user", item.question});
    prompts.push_back(chat_prompt_tokens(m, messages));
    longest = std::max(longest, prompts.back().size());
  }
  int const context = context_for(m, longest, options.max_tokens);
  for (std::size_t i = 0; i < items.size(); ++i) check_fits(prompts[i].size(), context, "line " + std::to_string(items[i].line));

  Generator generator(m.model, m.pool, policies, context, {.skip_attention = m.skip_attention});
  FactoidResult r;
  for (std::size_t i = 0; i < items.size(); ++i) {
    FactoidItem const& item = items[i];
    Generation const g = generate_greedy(generator, m.tokenizer, prompts[i], options.max_tokens);
    FactoidItemResult x;
    x.id = item.id;
    x.line = item.line;
    x.question = item.question;
    x.answers = item.answers;
    x.output = g.text;
    x.matched_answer = first_matching_answer(item.answers, g.text);
    x.correct = x.matched_answer >= 0;
    x.prompt_tokens = g.prompt_tokens;
    x.generated_tokens = g.tokens.size();
    x.stop_reason = g.stop_reason;
    x.skipped_blocks = g.skipped_blocks;
    x.ffn_blocks = g.ffn_blocks;
    r.correct += x.correct ? 1 : 0;
    r.items.push_back(std::move(x));
    if (progress) progress(i + 1, items.size());
  }
  r.n = items.size();
  r.accuracy = r.n ? static_cast<double>(r.correct) / static_cast<double>(r.n) : 0.0;
  r.set_statistics(generator.stack().statistics());
  r.seconds = seconds_since(start);
  return r;
}

// ---- perplexity and profile ----------------------------------------------------------------------

std::vector<Window> plan_windows(std::size_t tokens, int window, int stride, bool bos) {
  if (window < 2) throw std::invalid_argument("eval: the window must hold at least 2 tokens");
  if (stride < 1 || stride > window) throw std::invalid_argument("eval: the stride must be between 1 and the window");
  std::vector<Window> out;
  std::size_t const w = static_cast<std::size_t>(window), s = static_cast<std::size_t>(stride);
  std::size_t prev_end = 0;
  for (std::size_t begin = 0; begin < tokens; begin += s) {
    Window win;
    win.begin = begin;
    win.end = std::min(begin + w, tokens);
    win.score_begin = std::max(begin + (bos ? 0 : 1), prev_end);
    if (win.score_begin < win.end) out.push_back(win);
    prev_end = win.end;
    if (win.end == tokens) break;
  }
  return out;
}

namespace {

struct FeedOutcome {
  double sum_log_prob = 0;
  std::int64_t scored = 0;
  std::size_t windows = 0;
};

// Feeds `tokens` window by window through `generator` (see run_perplexity), scoring every
// prediction in the windows' score ranges. After each decode step whose prediction is scored,
// `on_scored_step` (if any) is called.
FeedOutcome feed_text(EvalModel const& m, Generator& generator, std::span<std::int32_t const> tokens, int window,
                      int stride, ProgressFn const& progress, std::function<void()> const& on_scored_step) {
  bool const bos = m.add_bos && m.tokenizer.bos_id() >= 0;
  std::vector<Window> const plan = plan_windows(tokens.size(), window, stride, bos);
  std::size_t const offset = bos ? 1 : 0;
  std::size_t total = 0;
  for (Window const& w : plan) total += w.end - w.begin + offset - 1;
  std::size_t done = 0;
  FeedOutcome out;
  std::vector<std::int32_t> seq;
  for (Window const& w : plan) {
    seq.clear();
    if (bos) seq.push_back(m.tokenizer.bos_id());
    seq.insert(seq.end(), tokens.begin() + static_cast<std::ptrdiff_t>(w.begin),
               tokens.begin() + static_cast<std::ptrdiff_t>(w.end));
    // seq[k]'s logits predict seq[k + 1] = tokens[w.begin + k + 1 - offset].
    std::span<float const> logits = generator.prefill(std::span<std::int32_t const>(seq.data(), 1));
    for (std::size_t k = 0; k + 1 < seq.size(); ++k) {
      if (k > 0) logits = generator.decode(seq[k]);
      std::size_t const target = w.begin + k + 1 - offset;
      if (target >= w.score_begin) {
        out.sum_log_prob += token_log_prob(logits, tokens[target]);
        ++out.scored;
        if (k > 0 && on_scored_step) on_scored_step();
      }
      ++done;
      if (progress) progress(done, total);
    }
    ++out.windows;
  }
  return out;
}

int resolved_stride(int window, int stride) { return stride > 0 ? stride : std::max(1, window / 2); }

std::vector<std::int32_t> text_tokens(EvalModel const& m, std::string_view text) {
  std::vector<std::int32_t> t = m.tokenizer.encode(text, false);
  if (t.size() < 2) throw DataError("the text has fewer than 2 tokens: nothing to score");
  return t;
}

}  // namespace

PerplexityResult run_perplexity(EvalModel const& m, ConfigurablePolicies const& policies, std::string_view text,
                                PerplexityOptions const& options, ProgressFn const& progress) {
  Clock::time_point const start = Clock::now();
  std::vector<std::int32_t> const tokens = text_tokens(m, text);
  PerplexityResult r;
  r.window = options.window;
  r.stride = resolved_stride(options.window, options.stride);
  r.text_tokens = static_cast<std::int64_t>(tokens.size());
  Generator generator(m.model, m.pool, policies, options.window + 1, {.skip_attention = m.skip_attention});
  FeedOutcome const f = feed_text(m, generator, tokens, r.window, r.stride, progress, {});
  r.sum_log_prob = f.sum_log_prob;
  r.tokens = f.scored;
  r.windows = f.windows;
  r.perplexity = perplexity_from_sum(f.sum_log_prob, f.scored);
  r.set_statistics(generator.stack().statistics());
  r.seconds = seconds_since(start);
  return r;
}

ConfigurablePolicies profile_policies(float threshold) {
  // The greedy rule with no spans never skips; it carries tau into the description.
  return {skipllm::policy::Greedy{threshold, 1, 0}, {0, 0, {}}, {0, 0}};
}

ProfileResult run_profile(EvalModel const& m, std::string_view text, ProfileOptions const& options,
                          ProgressFn const& progress) {
  Clock::time_point const start = Clock::now();
  std::vector<std::int32_t> const tokens = text_tokens(m, text);
  ConfigurablePolicies const dense = profile_policies(options.threshold);
  Generator generator(m.model, m.pool, dense, options.window + 1, {.record_trace = true});
  int const layers = m.model.config().n_layers;
  std::vector<std::vector<double>> scores(static_cast<std::size_t>(layers));
  auto const collect = [&] {
    DecisionTrace& trace = generator.stack().trace();
    if (trace.size() == 0) return;
    std::span<float const> const s = trace.scores(trace.size() - 1);
    for (int l = 0; l < layers; ++l) scores[static_cast<std::size_t>(l)].push_back(s[static_cast<std::size_t>(l)]);
    trace.clear();
  };
  // (Steps whose prediction is not scored leave their row in the trace; collect clears it.)
  FeedOutcome const f = feed_text(m, generator, tokens, options.window, resolved_stride(options.window, options.stride),
                                  progress, collect);
  ProfileResult r;
  r.threshold = options.threshold;
  r.windows = f.windows;
  r.perplexity = perplexity_from_sum(f.sum_log_prob, f.scored);
  r.policy = skipllm::describe(dense);
  for (int l = 0; l < layers; ++l) {
    std::vector<double> const& v = scores[static_cast<std::size_t>(l)];
    LayerProfile p;
    p.layer = l;
    p.cosine = describe_values(v);
    std::size_t above = 0, finite = 0;
    for (double const x : v) {
      if (!std::isfinite(x)) continue;
      ++finite;
      above += x > static_cast<double>(options.threshold) ? 1 : 0;
    }
    p.above_threshold = finite ? static_cast<double>(above) / static_cast<double>(finite) : nan();
    r.layers.push_back(p);
  }
  r.tokens = layers > 0 ? static_cast<std::int64_t>(scores[0].size()) : 0;
  r.seconds = seconds_since(start);
  return r;
}

namespace {

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char const c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string num(double v, int digits = 2) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

void write_profile_svg(std::ostream& os, ProfileResult const& p, std::string const& subtitle) {
  std::vector<std::string> sub;
  for (std::size_t a = 0; a <= subtitle.size();) {
    std::size_t b = subtitle.find('\n', a);
    if (b == std::string::npos) b = subtitle.size();
    if (b > a) sub.push_back(subtitle.substr(a, b - a));
    a = b + 1;
  }
  int const n = static_cast<int>(p.layers.size());
  double const tau = static_cast<double>(p.threshold);
  double const left = 70, right = 30, plot_w = std::max(520.0, 26.0 * n);
  double const overview_top = 78 + 16.0 * static_cast<double>(sub.size()), overview_h = 150;
  double const zoom_top = overview_top + overview_h + 56, zoom_h = 300;
  double const width = left + plot_w + right, height = zoom_top + zoom_h + 84;
  auto const x_of = [&](double layer) { return left + (n > 1 ? layer / (n - 1) : 0.5) * plot_w; };
  auto const finite = [](double v) { return std::isfinite(v); };

  // The zoomed range covers the typical layers: those whose mean is within 0.1 of the median
  // mean. Layers outside it (e.g. the first and last) are marked at the panel's edge.
  std::vector<double> means;
  for (LayerProfile const& l : p.layers) {
    if (finite(l.cosine.mean)) means.push_back(l.cosine.mean);
  }
  double const typical = means.empty() ? tau : describe_values(means).median;
  double zlo = tau, zhi = tau;
  for (LayerProfile const& l : p.layers) {
    Distribution const& d = l.cosine;
    if (!finite(d.mean) || std::abs(d.mean - typical) > 0.1) continue;
    for (double const v : {d.mean - d.stddev, d.p10}) zlo = std::min(zlo, v);
    for (double const v : {d.mean + d.stddev, d.p90}) zhi = std::max(zhi, v);
  }
  double const zstep = zhi - zlo > 0.4 ? 0.1 : zhi - zlo > 0.2 ? 0.05 : zhi - zlo > 0.08 ? 0.02 : 0.01;
  zlo = std::max(-1.0, std::floor(zlo / zstep - 1e-9) * zstep);
  zhi = std::min(1.0, std::ceil(zhi / zstep + 1e-9) * zstep);
  if (zhi <= zlo) zhi = zlo + zstep;

  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << num(width, 0) << "\" height=\"" << num(height, 0)
     << "\" viewBox=\"0 0 " << num(width, 0) << " " << num(height, 0) << "\" font-family=\"sans-serif\">\n";
  os << "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  os << "<text x=\"" << left << "\" y=\"26\" font-size=\"17\" font-weight=\"bold\">FFN similarity profile: cos(h, h + FFN(h)) per layer, dense</text>\n";
  for (std::size_t i = 0; i < sub.size(); ++i) {
    os << "<text x=\"" << left << "\" y=\"" << 46 + 16 * static_cast<int>(i) << "\" font-size=\"12\" fill=\"#444\">"
       << xml_escape(sub[i]) << "</text>\n";
  }

  // One panel: grid, band, p10/p90, mean, threshold; values outside [lo, hi] are clipped to the
  // edge and marked.
  auto const panel = [&](char const* id, char const* title, double top, double h, double lo, double hi, double step) {
    auto const y_of = [&](double v) { return top + (hi - std::clamp(v, lo, hi)) / (hi - lo) * h; };
    os << "<g id=\"" << id << "\">\n";
    os << "<text x=\"" << left << "\" y=\"" << num(top - 10, 1) << "\" font-size=\"13\" font-weight=\"bold\">" << title
       << "</text>\n";
    os << "<g class=\"axes\" font-size=\"11\" fill=\"#333\">\n";
    for (double v = lo; v <= hi + step / 2; v += step) {
      double const y = y_of(v);
      os << "<line x1=\"" << num(left, 1) << "\" y1=\"" << num(y, 1) << "\" x2=\"" << num(left + plot_w, 1)
         << "\" y2=\"" << num(y, 1) << "\" stroke=\"#e3e3e3\"/>\n";
      os << "<text x=\"" << num(left - 8, 1) << "\" y=\"" << num(y + 4, 1) << "\" text-anchor=\"end\">"
         << num(v, 2) << "</text>\n";
    }
    for (int l = 0; l < n; ++l) {
      if (n > 16 && l % 2 == 1 && l != n - 1) continue;
      os << "<text x=\"" << num(x_of(l), 1) << "\" y=\"" << num(top + h + 16, 1) << "\" text-anchor=\"middle\">" << l
         << "</text>\n";
    }
    os << "<rect x=\"" << num(left, 1) << "\" y=\"" << num(top, 1) << "\" width=\"" << num(plot_w, 1) << "\" height=\""
       << num(h, 1) << "\" fill=\"none\" stroke=\"#888\"/>\n";
    os << "<text transform=\"translate(18," << num(top + h / 2, 1)
       << ") rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">cosine</text>\n";
    os << "</g>\n";
    // The band: mean + std forward, mean - std backward.
    os << "<polygon class=\"band\" fill=\"#4a90d9\" fill-opacity=\"0.22\" stroke=\"none\" points=\"";
    for (int l = 0; l < n; ++l) {
      Distribution const& d = p.layers[static_cast<std::size_t>(l)].cosine;
      if (finite(d.mean)) os << num(x_of(l), 1) << "," << num(y_of(d.mean + d.stddev), 1) << " ";
    }
    for (int l = n - 1; l >= 0; --l) {
      Distribution const& d = p.layers[static_cast<std::size_t>(l)].cosine;
      if (finite(d.mean)) os << num(x_of(l), 1) << "," << num(y_of(d.mean - d.stddev), 1) << " ";
    }
    os << "\"/>\n";
    auto const polyline = [&](char const* cls, auto value, char const* style) {
      os << "<polyline class=\"" << cls << "\" fill=\"none\" " << style << " points=\"";
      for (int l = 0; l < n; ++l) {
        double const v = value(p.layers[static_cast<std::size_t>(l)]);
        if (finite(v)) os << num(x_of(l), 1) << "," << num(y_of(v), 1) << " ";
      }
      os << "\"/>\n";
    };
    polyline("p10", [](LayerProfile const& l) { return l.cosine.p10; },
             "stroke=\"#7a7a7a\" stroke-width=\"1\" stroke-dasharray=\"2,3\"");
    polyline("p90", [](LayerProfile const& l) { return l.cosine.p90; },
             "stroke=\"#7a7a7a\" stroke-width=\"1\" stroke-dasharray=\"2,3\"");
    polyline("mean", [](LayerProfile const& l) { return l.cosine.mean; }, "stroke=\"#1f5fa8\" stroke-width=\"2\"");
    double const ty = y_of(tau);
    os << "<line class=\"threshold\" x1=\"" << num(left, 1) << "\" y1=\"" << num(ty, 1) << "\" x2=\""
       << num(left + plot_w, 1) << "\" y2=\"" << num(ty, 1)
       << "\" stroke=\"#d0342c\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\"/>\n";
    os << "<g class=\"points\" fill=\"#1f5fa8\" font-size=\"10\">\n";
    for (int l = 0; l < n; ++l) {
      Distribution const& d = p.layers[static_cast<std::size_t>(l)].cosine;
      if (!finite(d.mean)) continue;
      double const x = x_of(l), y = y_of(d.mean);
      std::string const tip = "<title>layer " + std::to_string(l) + ": mean " + num(d.mean, 4) + ", std " +
                              num(d.stddev, 4) + ", p10 " + num(d.p10, 4) + ", p90 " + num(d.p90, 4) + "</title>";
      if (d.mean < lo || d.mean > hi) {
        // Off the panel: a triangle at the edge pointing out, with the value.
        double const dir = d.mean < lo ? 1 : -1;
        os << "<polygon fill=\"#d0342c\" points=\"" << num(x - 5, 1) << "," << num(y - 7 * dir, 1) << " "
           << num(x + 5, 1) << "," << num(y - 7 * dir, 1) << " " << num(x, 1) << "," << num(y, 1) << "\">" << tip
           << "</polygon>\n";
        os << "<text x=\"" << num(x + (l == n - 1 ? -7 : 7), 1) << "\" y=\"" << num(y - 10 * dir + 3, 1)
           << "\" text-anchor=\"" << (l == n - 1 ? "end" : "start") << "\" fill=\"#d0342c\">layer " << l << ": "
           << num(d.mean, 3) << "</text>\n";
      } else {
        os << "<circle cx=\"" << num(x, 1) << "\" cy=\"" << num(y, 1) << "\" r=\"3\">" << tip << "</circle>\n";
      }
    }
    os << "</g>\n</g>\n";
  };
  double olo = 0;  // the overview: from a multiple of 0.25 at or below every band edge and p10, up to 1
  for (LayerProfile const& l : p.layers) {
    for (double const v : {l.cosine.p10, l.cosine.mean - l.cosine.stddev}) {
      if (finite(v)) olo = std::min(olo, v);
    }
  }
  olo = std::max(-1.0, std::floor(olo * 4 + 1e-9) / 4);
  panel("overview", "All layers", overview_top, overview_h, olo, 1.0, 0.25);
  panel("zoom", ("Zoom on the typical layers (" + num(zlo, 2) + " to " + num(zhi, 2) + ")").c_str(), zoom_top, zoom_h,
        zlo, zhi, zstep);
  os << "<text x=\"" << num(left + plot_w / 2, 1) << "\" y=\"" << num(zoom_top + zoom_h + 34, 1)
     << "\" text-anchor=\"middle\" font-size=\"12\">layer</text>\n";

  // Legend.
  double const ly = zoom_top + zoom_h + 62;
  os << "<g id=\"legend\" font-size=\"12\">\n"
     << "<line x1=\"" << left << "\" y1=\"" << num(ly, 1) << "\" x2=\"" << left + 24 << "\" y2=\"" << num(ly, 1)
     << "\" stroke=\"#1f5fa8\" stroke-width=\"2\"/><text x=\"" << left + 30 << "\" y=\"" << num(ly + 4, 1)
     << "\">mean</text>\n"
     << "<rect x=\"" << left + 80 << "\" y=\"" << num(ly - 6, 1)
     << "\" width=\"24\" height=\"12\" fill=\"#4a90d9\" fill-opacity=\"0.22\"/><text x=\"" << left + 110 << "\" y=\""
     << num(ly + 4, 1) << "\">mean \xC2\xB1 std</text>\n"
     << "<line x1=\"" << left + 210 << "\" y1=\"" << num(ly, 1) << "\" x2=\"" << left + 234 << "\" y2=\"" << num(ly, 1)
     << "\" stroke=\"#7a7a7a\" stroke-dasharray=\"2,3\"/><text x=\"" << left + 240 << "\" y=\"" << num(ly + 4, 1)
     << "\">p10 / p90</text>\n"
     << "<line x1=\"" << left + 330 << "\" y1=\"" << num(ly, 1) << "\" x2=\"" << left + 354 << "\" y2=\"" << num(ly, 1)
     << "\" stroke=\"#d0342c\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\"/><text x=\"" << left + 360 << "\" y=\""
     << num(ly + 4, 1) << "\">threshold " << num(tau, 3) << "</text>\n"
     << "</g>\n</svg>\n";
}

// ---- agreement, collapse, chat, summarize --------------------------------------------------------

std::string length_bucket(std::size_t prompt_tokens) {
  if (prompt_tokens < kShortPromptTokens) return "short";
  if (prompt_tokens < kLongPromptTokens) return "medium";
  return "long";
}

CompareSummary summarize_items(std::span<CompareItemResult const> items, std::string const& bucket) {
  CompareSummary s;
  s.bucket = bucket;
  s.n = items.size();
  if (items.empty()) return s;
  std::vector<double> prefix, overall, divergence, rouge, ref, dense_ref, d1, d2, d3, rep, dd2, drep, st, dt;
  for (CompareItemResult const& i : items) {
    s.identical += i.agreement.identical ? 1 : 0;
    prefix.push_back(i.agreement.prefix_rate);
    overall.push_back(i.agreement.overall_rate);
    divergence.push_back(static_cast<double>(i.agreement.first_divergence));
    rouge.push_back(i.rouge_vs_dense.f1);
    if (i.rouge_vs_reference) {
      ++s.with_reference;
      ref.push_back(i.rouge_vs_reference->f1);
      dense_ref.push_back(i.dense_rouge_vs_reference ? i.dense_rouge_vs_reference->f1 : nan());
    }
    d1.push_back(i.collapse.distinct_1);
    d2.push_back(i.collapse.distinct_2);
    d3.push_back(i.collapse.distinct_3);
    rep.push_back(static_cast<double>(i.collapse.longest_repeat));
    s.collapsed += i.collapse.collapsed ? 1 : 0;
    dd2.push_back(i.dense_collapse.distinct_2);
    drep.push_back(static_cast<double>(i.dense_collapse.longest_repeat));
    s.dense_collapsed += i.dense_collapse.collapsed ? 1 : 0;
    st.push_back(static_cast<double>(i.skip.tokens.size()));
    dt.push_back(static_cast<double>(i.dense.tokens.size()));
  }
  s.prefix_rate = finite_mean(prefix);
  s.overall_rate = finite_mean(overall);
  s.first_divergence = finite_mean(divergence);
  s.rouge_vs_dense = finite_mean(rouge);
  s.rouge_vs_reference = finite_mean(ref);
  s.dense_rouge_vs_reference = finite_mean(dense_ref);
  s.distinct_1 = finite_mean(d1);
  s.distinct_2 = finite_mean(d2);
  s.distinct_3 = finite_mean(d3);
  s.longest_repeat = finite_mean(rep);
  s.dense_distinct_2 = finite_mean(dd2);
  s.dense_longest_repeat = finite_mean(drep);
  s.skip_tokens = finite_mean(st);
  s.dense_tokens = finite_mean(dt);
  return s;
}

CompareResult run_compare(EvalModel const& m, ConfigurablePolicies const& policies, std::span<PromptItem const> items,
                          CompareOptions const& options, ProgressFn const& progress) {
  Clock::time_point const start = Clock::now();
  std::vector<std::vector<std::int32_t>> prompts;
  std::size_t longest = 0;
  for (PromptItem const& item : items) {
    prompts.push_back(chat_prompt_tokens(m, item.messages));
    longest = std::max(longest, prompts.back().size());
  }
  int const context = context_for(m, longest, options.max_tokens);
  for (std::size_t i = 0; i < items.size(); ++i) check_fits(prompts[i].size(), context, "line " + std::to_string(items[i].line));

  // A policy that cannot skip produces the dense generation itself.
  bool const dense_run = options.with_dense && can_skip(policies);
  ConfigurablePolicies const dense_policies = dense_version(policies);
  Generator generator(m.model, m.pool, policies, context, {.skip_attention = m.skip_attention});
  std::optional<Generator> dense_generator;
  if (dense_run) dense_generator.emplace(m.model, m.pool, dense_policies, context);

  CompareResult r;
  r.dense_run = dense_run;
  for (std::size_t i = 0; i < items.size(); ++i) {
    PromptItem const& item = items[i];
    CompareItemResult x;
    x.id = item.id;
    x.line = item.line;
    x.prompt_tokens = prompts[i].size();
    x.skip = generate_greedy(generator, m.tokenizer, prompts[i], options.max_tokens);
    x.dense = dense_run ? generate_greedy(*dense_generator, m.tokenizer, prompts[i], options.max_tokens) : x.skip;
    x.agreement = token_agreement(x.dense.tokens, x.skip.tokens);
    x.rouge_vs_dense = rouge_l(x.skip.text, x.dense.text);
    if (item.reference) {
      x.rouge_vs_reference = rouge_l(x.skip.text, *item.reference);
      x.dense_rouge_vs_reference = rouge_l(x.dense.text, *item.reference);
    }
    x.collapse = collapse_metrics(x.skip.tokens);
    x.dense_collapse = collapse_metrics(x.dense.tokens);
    r.items.push_back(std::move(x));
    if (progress) progress(i + 1, items.size());
  }
  r.summary = summarize_items(r.items);
  r.set_statistics(generator.stack().statistics());
  r.seconds = seconds_since(start);
  return r;
}

CompareResult run_agreement(EvalModel const& m, ConfigurablePolicies const& policies, std::span<PromptItem const> items,
                            CompareOptions const& options, ProgressFn const& progress) {
  return run_compare(m, policies, items, options, progress);
}

CompareResult run_collapse(EvalModel const& m, ConfigurablePolicies const& policies, std::span<PromptItem const> items,
                           CompareOptions const& options, ProgressFn const& progress) {
  return run_compare(m, policies, items, options, progress);
}

CompareResult run_chat(EvalModel const& m, ConfigurablePolicies const& policies, std::span<PromptItem const> items,
                       CompareOptions const& options, ProgressFn const& progress) {
  return run_compare(m, policies, items, options, progress);
}

CompareResult run_summarize(EvalModel const& m, ConfigurablePolicies const& policies, std::span<SummarizeItem const> items,
                            CompareOptions const& options, ProgressFn const& progress) {
  std::vector<PromptItem> prompts;
  for (SummarizeItem const& s : items) {
    PromptItem p;
    p.id = s.id;
    p.line = s.line;
    p.reference = s.reference;
    p.messages.push_back({"user", summarize_prompt(s.document)});
    prompts.push_back(std::move(p));
  }
  CompareResult r = run_compare(m, policies, prompts, options, progress);
  for (CompareItemResult& x : r.items) x.bucket = length_bucket(x.prompt_tokens);
  for (char const* bucket : {"short", "medium", "long"}) {
    std::vector<CompareItemResult> in;
    for (CompareItemResult const& x : r.items) {
      if (x.bucket == bucket) in.push_back(x);
    }
    if (!in.empty()) r.buckets.push_back(summarize_items(in, bucket));
  }
  return r;
}

}  // namespace skipllm::engine::eval
