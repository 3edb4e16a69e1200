#include "format/policy_config.hpp"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <variant>

#include <skipllm/json.hpp>

namespace skipllm::engine {

namespace {

// ---- A small strict JSON reader -----------------------------------------------------------------

struct Json;
using JsonArray = std::vector<Json>;
using JsonObject = std::vector<std::pair<std::string, Json>>;  // in file order

struct Json {
  std::variant<std::nullptr_t, bool, double, std::string, std::shared_ptr<JsonArray>, std::shared_ptr<JsonObject>> v;
  bool is_null() const { return std::holds_alternative<std::nullptr_t>(v); }
};

class Reader {
 public:
  Reader(std::string_view text, std::string const& source) : t_(text), source_(source) {}

  Json document() {
    Json j = value(0);
    skip_ws();
    if (i_ != t_.size()) fail("unexpected text after the JSON value");
    return j;
  }

 private:
  [[noreturn]] void fail(std::string const& what) const {
    int line = 1, col = 1;
    for (std::size_t k = 0; k < i_ && k < t_.size(); ++k) {
      if (t_[k] == '\n') ++line, col = 1; else ++col;
    }
    throw PolicyConfigError(source_ + ":" + std::to_string(line) + ":" + std::to_string(col) + ": invalid JSON: " + what);
  }
  void skip_ws() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r')) ++i_;
  }
  bool eat(char c) {
    skip_ws();
    if (i_ < t_.size() && t_[i_] == c) { ++i_; return true; }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) fail(std::string("expected '") + c + "'");
  }
  Json value(int depth) {
    if (depth > 64) fail("nested too deeply");
    skip_ws();
    if (i_ >= t_.size()) fail("unexpected end of input");
    char const c = t_[i_];
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') return Json{string()};
    if (literal("true")) return Json{true};
    if (literal("false")) return Json{false};
    if (literal("null")) return Json{nullptr};
    return Json{number()};
  }
  bool literal(std::string_view word) {
    if (t_.substr(i_, word.size()) == word) { i_ += word.size(); return true; }
    return false;
  }
  double number() {
    std::size_t const start = i_;
    if (i_ < t_.size() && t_[i_] == '-') ++i_;
    while (i_ < t_.size() && (std::isdigit(static_cast<unsigned char>(t_[i_])) || t_[i_] == '.' || t_[i_] == 'e' ||
                              t_[i_] == 'E' || t_[i_] == '+' || t_[i_] == '-')) {
      ++i_;
    }
    double v = 0;
    auto const [end, ec] = std::from_chars(t_.data() + start, t_.data() + i_, v);
    if (start == i_ || ec != std::errc() || end != t_.data() + i_ || !std::isfinite(v)) {
      i_ = start;
      fail("expected a value");
    }
    return v;
  }
  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      if (i_ >= t_.size()) fail("unterminated string");
      char const c = t_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') { out += c; continue; }
      if (i_ >= t_.size()) fail("unterminated string");
      char const e = t_[i_++];
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
          if (i_ + 4 > t_.size()) fail("bad \\u escape");
          unsigned cp = 0;
          auto const [end, ec] = std::from_chars(t_.data() + i_, t_.data() + i_ + 4, cp, 16);
          if (ec != std::errc() || end != t_.data() + i_ + 4) fail("bad \\u escape");
          i_ += 4;
          if (cp >= 0xD800 && cp < 0xE000) fail("surrogate \\u escapes are not supported");
          if (cp < 0x80) {
            out += static_cast<char>(cp);
          } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          } else {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          }
          break;
        }
        default: fail(std::string("bad escape '\\") + e + "'");
      }
    }
  }
  Json array(int depth) {
    expect('[');
    auto a = std::make_shared<JsonArray>();
    if (eat(']')) return Json{a};
    do a->push_back(value(depth + 1)); while (eat(','));
    expect(']');
    return Json{a};
  }
  Json object(int depth) {
    expect('{');
    auto o = std::make_shared<JsonObject>();
    if (eat('}')) return Json{o};
    do {
      skip_ws();
      std::string key = string();
      for (auto const& [k, v] : *o) {
        if (k == key) fail("duplicate key \"" + key + "\"");
      }
      expect(':');
      o->emplace_back(std::move(key), value(depth + 1));
    } while (eat(','));
    expect('}');
    return Json{o};
  }

  std::string_view t_;
  std::string const& source_;
  std::size_t i_ = 0;
};

// ---- Typed access with field paths in the messages -----------------------------------------------

class Fields {
 public:
  Fields(Json const& j, std::string path, std::string const& source) : path_(std::move(path)), source_(source) {
    auto const* o = std::get_if<std::shared_ptr<JsonObject>>(&j.v);
    if (o == nullptr) fail(path_, "expected an object");
    obj_ = o->get();
  }
  [[noreturn]] void fail(std::string const& field, std::string const& what) const {
    throw PolicyConfigError(source_ + ": field '" + field + "': " + what);
  }
  std::string at(std::string_view key) const { return path_.empty() ? std::string(key) : path_ + "." + std::string(key); }
  Json const* find(std::string_view key) {
    seen_.insert(std::string(key));
    for (auto const& [k, v] : *obj_) {
      if (k == key) return &v;
    }
    return nullptr;
  }
  Json const& need(std::string_view key) {
    Json const* j = find(key);
    if (j == nullptr) fail(at(key), "missing");
    return *j;
  }
  // Every key must have been asked for: unknown fields are errors (a typo must not be ignored).
  void done() const {
    for (auto const& [k, v] : *obj_) {
      if (!seen_.count(k)) fail(at(k), "unknown field");
    }
  }
  double number(std::string_view key, Json const& j, double lo, double hi) const {
    auto const* d = std::get_if<double>(&j.v);
    if (d == nullptr) fail(at(key), "expected a number");
    if (*d < lo || *d > hi) fail(at(key), "must be between " + fmt(lo) + " and " + fmt(hi) + ", got " + fmt(*d));
    return *d;
  }
  int integer(std::string_view key, Json const& j, int lo, int hi) const {
    double const d = number(key, j, lo, hi);
    if (d != std::floor(d)) fail(at(key), "expected an integer, got " + fmt(d));
    return static_cast<int>(d);
  }
  std::string string(std::string_view key, Json const& j) const {
    auto const* s = std::get_if<std::string>(&j.v);
    if (s == nullptr) fail(at(key), "expected a string");
    return *s;
  }
  bool boolean(std::string_view key, Json const& j) const {
    auto const* b = std::get_if<bool>(&j.v);
    if (b == nullptr) fail(at(key), "expected true or false");
    return *b;
  }
  JsonArray const& array(std::string_view key, Json const& j) const {
    auto const* a = std::get_if<std::shared_ptr<JsonArray>>(&j.v);
    if (a == nullptr) fail(at(key), "expected an array");
    return **a;
  }
  static std::string fmt(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
  }

 private:
  std::string path_;
  std::string const& source_;
  JsonObject const* obj_ = nullptr;
  std::set<std::string> seen_;
};

std::optional<PolicyConfig::Kind> kind_from(std::string_view s) {
  for (auto k : {PolicyConfig::Kind::greedy, PolicyConfig::Kind::layer_greedy, PolicyConfig::Kind::random_window,
                 PolicyConfig::Kind::static_layers, PolicyConfig::Kind::dense}) {
    if (kind_name(k) == s) return k;
  }
  return std::nullopt;
}

constexpr int kMaxLayers = skipllm::LayerMask::kMaxLayers;

}  // namespace

std::string_view kind_name(PolicyConfig::Kind kind) {
  switch (kind) {
    case PolicyConfig::Kind::greedy: return "greedy";
    case PolicyConfig::Kind::layer_greedy: return "layer_greedy";
    case PolicyConfig::Kind::random_window: return "random_window";
    case PolicyConfig::Kind::static_layers: return "static";
    case PolicyConfig::Kind::dense: return "dense";
  }
  return "?";
}

PolicyConfig parse_policy_config(std::string_view text, std::string const& source) {
  Json const doc = Reader(text, source).document();
  PolicyConfig c;
  Fields top(doc, "", source);
  std::string const schema = top.string("schema", top.need("schema"));
  if (schema != kPolicySchema) {
    top.fail("schema", "expected \"" + std::string(kPolicySchema) + "\", got \"" + schema + "\"");
  }
  int const version = top.integer("version", top.need("version"), 0, 1'000'000);
  if (version != kPolicySchemaVersion) {
    top.fail("version", "this skipllm reads version " + std::to_string(kPolicySchemaVersion) + ", got " +
                            std::to_string(version));
  }
  if (Json const* m = top.find("model")) {
    Fields f(*m, "model", source);
    if (Json const* j = f.find("name")) c.model_name = f.string("name", *j);
    if (Json const* j = f.find("layers")) c.model_layers = f.integer("layers", *j, 0, kMaxLayers);
    if (Json const* j = f.find("file")) c.model_file = f.string("file", *j);
    f.done();
  }
  if (Json const* p = top.find("produced_by")) {
    Fields f(*p, "produced_by", source);
    for (auto [key, dst] : {std::pair{"tool", &c.tool}, std::pair{"command", &c.command}, std::pair{"date", &c.date},
                            std::pair{"data", &c.data}, std::pair{"notes", &c.notes}}) {
      if (Json const* j = f.find(key)) *dst = f.string(key, *j);
    }
    for (auto [key, dst] : {std::pair{"target_skip", &c.target_skip}, std::pair{"achieved_skip", &c.achieved_skip},
                            std::pair{"perplexity_dense", &c.perplexity_dense}, std::pair{"perplexity", &c.perplexity}}) {
      if (Json const* j = f.find(key)) *dst = f.number(key, *j, 0.0, 1e30);
    }
    f.done();
  }
  Fields pol(top.need("policy"), "policy", source);
  {
    std::string const k = pol.string("kind", pol.need("kind"));
    auto const kind = kind_from(k);
    if (!kind) pol.fail("policy.kind", "expected greedy, layer_greedy, random_window, static or dense, got \"" + k + "\"");
    c.kind = *kind;
  }
  using Kind = PolicyConfig::Kind;
  if (Json const* j = pol.find("threshold")) c.threshold = static_cast<float>(pol.number("threshold", *j, -1.0, 1.0));
  else if (c.kind == Kind::greedy) pol.fail("policy.threshold", "missing (required for kind greedy)");
  if (Json const* j = pol.find("layer_thresholds")) {
    JsonArray const& a = pol.array("layer_thresholds", *j);
    if (a.empty() || a.size() > static_cast<std::size_t>(kMaxLayers)) {
      pol.fail("policy.layer_thresholds", "expected 1 to " + std::to_string(kMaxLayers) + " entries");
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
      std::string const key = "layer_thresholds[" + std::to_string(i) + "]";
      if (a[i].is_null()) c.layer_thresholds.emplace_back(std::nullopt);
      else c.layer_thresholds.emplace_back(static_cast<float>(pol.number(key, a[i], -1.0, 1.0)));
    }
  } else if (c.kind == Kind::layer_greedy) {
    pol.fail("policy.layer_thresholds", "missing (required for kind layer_greedy)");
  }
  if (Json const* j = pol.find("span")) {
    if (auto const* s = std::get_if<std::string>(&j->v)) {
      if (*s != "all") pol.fail("policy.span", "expected an integer >= 1 or \"all\", got \"" + *s + "\"");
      c.span = skipllm::policy::kToColdRegion;
    } else {
      c.span = pol.integer("span", *j, 1, 100'000);
    }
  }
  if (Json const* j = pol.find("spans_per_token")) c.spans_per_token = pol.integer("spans_per_token", *j, 0, 1'000);
  if (Json const* j = pol.find("warmup")) {
    Fields w(*j, "policy.warmup", source);
    c.warmup_tokens = w.integer("tokens", w.need("tokens"), 0, 1'000'000);
    c.warmup_every = w.integer("every", w.need("every"), 0, 1'000'000);
    w.done();
  }
  if (Json const* j = pol.find("cold")) {
    Fields w(*j, "policy.cold", source);
    c.cold_first = w.integer("first", w.need("first"), 0, kMaxLayers);
    c.cold_last = w.integer("last", w.need("last"), 0, kMaxLayers);
    if (Json const* l = w.find("layers")) {
      JsonArray const& a = w.array("layers", *l);
      for (std::size_t i = 0; i < a.size(); ++i) {
        c.cold_layers.push_back(w.integer("layers[" + std::to_string(i) + "]", a[i], 0, kMaxLayers - 1));
      }
    }
    w.done();
  }
  if (Json const* j = pol.find("random_window")) {
    Fields w(*j, "policy.random_window", source);
    c.window_length = static_cast<float>(w.number("length", w.need("length"), 0.0, kMaxLayers));
    if (Json const* v = w.find("first")) c.window_first = w.integer("first", *v, 0, kMaxLayers);
    if (Json const* v = w.find("last")) c.window_last = w.integer("last", *v, 0, kMaxLayers);
    if (Json const* v = w.find("seed")) c.window_seed = static_cast<std::uint32_t>(w.number("seed", *v, 0, 4294967295.0));
    if (c.window_first > c.window_last) w.fail("policy.random_window.first", "must not exceed 'last'");
    w.done();
  } else if (c.kind == Kind::random_window) {
    pol.fail("policy.random_window", "missing (required for kind random_window)");
  }
  if (Json const* j = pol.find("static_layers")) {
    JsonArray const& a = pol.array("static_layers", *j);
    for (std::size_t i = 0; i < a.size(); ++i) {
      c.static_layers.push_back(pol.integer("static_layers[" + std::to_string(i) + "]", a[i], 0, kMaxLayers - 1));
    }
  } else if (c.kind == Kind::static_layers) {
    pol.fail("policy.static_layers", "missing (required for kind static)");
  }
  if (Json const* j = pol.find("skip_attention")) c.skip_attention = pol.boolean("skip_attention", *j);
  if (Json const* j = pol.find("metric")) {
    std::string const m = pol.string("metric", *j);
    if (m != "cosine") pol.fail("policy.metric", "only \"cosine\" is available at runtime, got \"" + m + "\"");
  }
  pol.done();
  top.done();
  return c;
}

PolicyConfig load_policy_config(std::filesystem::path const& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw PolicyConfigError("policy config " + path.string() + " is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw PolicyConfigError("cannot read policy config " + path.string() + ": " + std::strerror(errno));
  std::string const text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_policy_config(text, path.string());
}

namespace {
void number_out(std::ostream& os, double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.7g", v);
  os << buf;
}
void string_out(std::ostream& os, std::string const& s) { skipllm::write_json_string(os, s); }
}  // namespace

std::string policy_config_json(PolicyConfig const& c) {
  std::ostringstream os;
  os << "{\n  \"schema\": \"" << kPolicySchema << "\",\n  \"version\": " << kPolicySchemaVersion << ",\n  \"model\": {\"name\": ";
  string_out(os, c.model_name);
  os << ", \"layers\": " << c.model_layers << ", \"file\": ";
  string_out(os, c.model_file);
  os << "},\n  \"produced_by\": {";
  char const* sep = "";
  for (auto [key, v] : {std::pair{"tool", &c.tool}, std::pair{"command", &c.command}, std::pair{"date", &c.date},
                        std::pair{"data", &c.data}, std::pair{"notes", &c.notes}}) {
    if (v->empty()) continue;
    os << sep << "\n    \"" << key << "\": ";
    string_out(os, *v);
    sep = ",";
  }
  for (auto [key, v] : {std::pair{"target_skip", &c.target_skip}, std::pair{"achieved_skip", &c.achieved_skip},
                        std::pair{"perplexity_dense", &c.perplexity_dense}, std::pair{"perplexity", &c.perplexity}}) {
    if (!*v) continue;
    os << sep << "\n    \"" << key << "\": ";
    number_out(os, **v);
    sep = ",";
  }
  os << (*sep ? "\n  }" : "}") << ",\n  \"policy\": {\n    \"kind\": \"" << kind_name(c.kind) << "\",\n    \"threshold\": ";
  number_out(os, c.threshold);
  if (!c.layer_thresholds.empty()) {
    os << ",\n    \"layer_thresholds\": [";
    for (std::size_t i = 0; i < c.layer_thresholds.size(); ++i) {
      os << (i ? ", " : "");
      if (c.layer_thresholds[i]) number_out(os, *c.layer_thresholds[i]); else os << "null";
    }
    os << "]";
  }
  os << ",\n    \"span\": ";
  if (c.span >= skipllm::policy::kToColdRegion) os << "\"all\""; else os << c.span;
  os << ",\n    \"spans_per_token\": " << c.spans_per_token << ",\n    \"warmup\": {\"tokens\": " << c.warmup_tokens
     << ", \"every\": " << c.warmup_every << "},\n    \"cold\": {\"first\": " << c.cold_first << ", \"last\": " << c.cold_last
     << ", \"layers\": [";
  for (std::size_t i = 0; i < c.cold_layers.size(); ++i) os << (i ? ", " : "") << c.cold_layers[i];
  os << "]}";
  if (c.kind == PolicyConfig::Kind::random_window) {
    os << ",\n    \"random_window\": {\"length\": ";
    number_out(os, c.window_length);
    os << ", \"first\": " << c.window_first << ", \"last\": " << std::min(c.window_last, kMaxLayers)
       << ", \"seed\": " << c.window_seed << "}";
  }
  if (c.kind == PolicyConfig::Kind::static_layers) {
    os << ",\n    \"static_layers\": [";
    for (std::size_t i = 0; i < c.static_layers.size(); ++i) os << (i ? ", " : "") << c.static_layers[i];
    os << "]";
  }
  os << ",\n    \"skip_attention\": " << (c.skip_attention ? "true" : "false") << ",\n    \"metric\": \"cosine\"\n  }\n}\n";
  return os.str();
}

void save_policy_config(std::filesystem::path const& path, PolicyConfig const& c) {
  std::string const text = policy_config_json(c);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw PolicyConfigError("cannot write policy config " + path.string() + ": " + std::strerror(errno));
  out << text;
  out.close();
  if (!out) throw PolicyConfigError("writing policy config " + path.string() + " failed");
}

EnginePolicies make_engine_policies(PolicyConfig const& c, int num_layers) {
  auto const fail = [](std::string const& what) { throw PolicyConfigError("policy config: " + what); };
  if (num_layers < 1 || num_layers > kMaxLayers) fail("unsupported depth " + std::to_string(num_layers));
  if (c.model_layers != 0 && c.model_layers != num_layers) {
    fail("calibrated for a " + std::to_string(c.model_layers) + "-layer model" +
         (c.model_name.empty() ? std::string() : " (" + c.model_name + ")") + ", but this model has " +
         std::to_string(num_layers) + " layers");
  }
  if (c.cold_first > num_layers || c.cold_last > num_layers) {
    fail("cold.first/cold.last exceed the model's " + std::to_string(num_layers) + " layers");
  }
  EnginePolicies p;
  p.skip.tau = c.threshold;
  p.skip.span = c.span;
  p.skip.spans_per_token = c.kind == PolicyConfig::Kind::dense ? 0 : c.spans_per_token;
  p.skip.skip_attention = c.skip_attention;
  p.warmup = {c.warmup_tokens, c.warmup_every};
  p.cold = {c.cold_first, c.cold_last, {}};
  for (int const l : c.cold_layers) {
    if (l >= num_layers) fail("cold layer " + std::to_string(l) + " is outside the model's " + std::to_string(num_layers) + " layers");
    p.cold.layers.insert(l);
  }
  switch (c.kind) {
    case PolicyConfig::Kind::greedy:
    case PolicyConfig::Kind::dense: p.skip.kind = EngineSkip::Kind::greedy; break;
    case PolicyConfig::Kind::layer_greedy:
      if (c.layer_thresholds.size() != static_cast<std::size_t>(num_layers)) {
        fail("layer_thresholds has " + std::to_string(c.layer_thresholds.size()) + " entries, the model " +
             std::to_string(num_layers) + " layers");
      }
      p.skip.kind = EngineSkip::Kind::layer_greedy;
      for (int l = 0; l < kMaxLayers; ++l) p.skip.layer_tau[l] = skipllm::policy::LayerThresholds::kNever;
      for (int l = 0; l < num_layers; ++l) {
        if (auto const t = c.layer_thresholds[static_cast<std::size_t>(l)]) p.skip.layer_tau[l] = *t;
      }
      break;
    case PolicyConfig::Kind::static_layers:
      p.skip.kind = EngineSkip::Kind::static_mask;
      for (int const l : c.static_layers) {
        if (l >= num_layers) fail("static layer " + std::to_string(l) + " is outside the model's " + std::to_string(num_layers) + " layers");
        p.skip.static_layers.insert(l);
      }
      break;
    case PolicyConfig::Kind::random_window:
      p.skip.kind = EngineSkip::Kind::random_window;
      p.skip.random = {c.window_length, c.window_first, c.window_last, c.window_seed};
      break;
  }
  return p;
}

PolicyConfig policy_config_from(skipllm::policy::RuntimePolicies const& p) {
  PolicyConfig c;
  c.kind = p.skip.spans_per_token == 0 ? PolicyConfig::Kind::dense : PolicyConfig::Kind::greedy;
  c.threshold = p.skip.tau;
  c.span = p.skip.span;
  c.spans_per_token = p.skip.spans_per_token;
  c.warmup_tokens = p.warmup.tokens;
  c.warmup_every = p.warmup.every;
  c.cold_first = p.cold.first;
  c.cold_last = p.cold.last;
  return c;
}

}  // namespace skipllm::engine
