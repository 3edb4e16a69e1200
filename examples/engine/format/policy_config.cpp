#include "format/policy_config.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <skipllm/json.hpp>
#include <skipllm/policy/describe.hpp>

#include "format/json_reader.hpp"
#include "format/whole_file.hpp"

namespace skipllm::engine {

namespace {

using Json = nlohmann::json;

Json parse_document(std::string_view text, std::string const& source) {
  try {
    return parse_json(text, DuplicateKeys::reject);  // a config must say one thing per field
  } catch (JsonSyntaxError const& e) {
    std::string const where = e.line == 0 ? "" : ":" + std::to_string(e.line) + ":" + std::to_string(e.column);
    throw PolicyConfigError(source + where + ": invalid JSON: " + e.reason);
  }
}

// ---- Typed access with field paths in the messages -----------------------------------------------

class Fields {
 public:
  Fields(Json const& j, std::string path, std::string const& source)
      : path_(std::move(path)), source_(source), obj_(&j) {
    if (!j.is_object()) {
      if (path_.empty()) throw PolicyConfigError(source_ + ": expected an object at the top level");
      fail(path_, "expected an object");
    }
  }
  [[noreturn]] void fail(std::string const& field, std::string const& what) const {
    throw PolicyConfigError(source_ + ": field '" + field + "': " + what);
  }
  std::string at(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  Json const* find(std::string_view key) {
    seen_.insert(std::string(key));
    auto const it = obj_->find(key);
    return it == obj_->end() ? nullptr : &*it;
  }
  Json const& need(std::string_view key) {
    Json const* j = find(key);
    if (j == nullptr) fail(at(key), "missing");
    return *j;
  }
  // Every key must have been asked for: unknown fields are errors (a typo must not be ignored).
  void done() const {
    for (auto const& [k, v] : obj_->items()) {
      if (!seen_.count(k)) fail(at(k), "unknown field");
    }
  }
  double number(std::string_view key, Json const& j, double lo, double hi) const {
    if (!j.is_number()) fail(at(key), "expected a number");
    double const d = j.get<double>();
    if (d < lo || d > hi) fail(at(key), "must be between " + fmt(lo) + " and " + fmt(hi) + ", got " + fmt(d));
    return d;
  }
  int integer(std::string_view key, Json const& j, int lo, int hi) const {
    double const d = number(key, j, lo, hi);
    if (d != std::floor(d)) fail(at(key), "expected an integer, got " + fmt(d));
    return static_cast<int>(d);
  }
  std::string string(std::string_view key, Json const& j) const {
    if (!j.is_string()) fail(at(key), "expected a string");
    return j.get<std::string>();
  }
  bool boolean(std::string_view key, Json const& j) const {
    if (!j.is_boolean()) fail(at(key), "expected true or false");
    return j.get<bool>();
  }
  Json const& array(std::string_view key, Json const& j) const {
    if (!j.is_array()) fail(at(key), "expected an array");
    return j;
  }
  static std::string fmt(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
  }

 private:
  std::string path_;
  std::string const& source_;
  Json const* obj_;
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
  Json const doc = parse_document(text, source);
  PolicyConfig c;
  Fields top(doc, "", source);
  std::string const schema = top.string("schema", top.need("schema"));
  if (schema != kPolicySchema) {
    top.fail("schema", "expected \"" + std::string(kPolicySchema) + "\", got \"" + schema + "\"");
  }
  int const version = top.integer("version", top.need("version"), 0, 1'000'000);
  if (version != kPolicySchemaVersion) {
    top.fail("version",
             "this skipllm reads version " + std::to_string(kPolicySchemaVersion) + ", got " + std::to_string(version));
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
    for (auto [key, dst] :
         {std::pair{"target_skip", &c.target_skip}, std::pair{"achieved_skip", &c.achieved_skip},
          std::pair{"perplexity_dense", &c.perplexity_dense}, std::pair{"perplexity", &c.perplexity}}) {
      if (Json const* j = f.find(key)) *dst = f.number(key, *j, 0.0, 1e30);
    }
    f.done();
  }
  Fields pol(top.need("policy"), "policy", source);
  {
    std::string const k = pol.string("kind", pol.need("kind"));
    auto const kind = kind_from(k);
    if (!kind)
      pol.fail("policy.kind", "expected greedy, layer_greedy, random_window, static or dense, got \"" + k + "\"");
    c.kind = *kind;
  }
  using Kind = PolicyConfig::Kind;
  if (Json const* j = pol.find("threshold"))
    c.threshold = static_cast<float>(pol.number("threshold", *j, -1.0, 1.0));
  else if (c.kind == Kind::greedy)
    pol.fail("policy.threshold", "missing (required for kind greedy)");
  if (Json const* j = pol.find("layer_thresholds")) {
    Json const& a = pol.array("layer_thresholds", *j);
    if (a.empty() || a.size() > static_cast<std::size_t>(kMaxLayers)) {
      pol.fail("policy.layer_thresholds", "expected 1 to " + std::to_string(kMaxLayers) + " entries");
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
      std::string const key = "layer_thresholds[" + std::to_string(i) + "]";
      if (a[i].is_null())
        c.layer_thresholds.emplace_back(std::nullopt);
      else
        c.layer_thresholds.emplace_back(static_cast<float>(pol.number(key, a[i], -1.0, 1.0)));
    }
  } else if (c.kind == Kind::layer_greedy) {
    pol.fail("policy.layer_thresholds", "missing (required for kind layer_greedy)");
  }
  if (Json const* j = pol.find("span")) {
    if (j->is_string()) {
      std::string const s = j->get<std::string>();
      if (s != "all") pol.fail("policy.span", "expected an integer >= 1 or \"all\", got \"" + s + "\"");
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
      Json const& a = w.array("layers", *l);
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
    if (Json const* v = w.find("seed"))
      c.window_seed = static_cast<std::uint32_t>(w.number("seed", *v, 0, 4294967295.0));
    if (c.window_first > c.window_last) w.fail("policy.random_window.first", "must not exceed 'last'");
    w.done();
  } else if (c.kind == Kind::random_window) {
    pol.fail("policy.random_window", "missing (required for kind random_window)");
  }
  if (Json const* j = pol.find("static_layers")) {
    Json const& a = pol.array("static_layers", *j);
    for (std::size_t i = 0; i < a.size(); ++i) {
      c.static_layers.push_back(pol.integer("static_layers[" + std::to_string(i) + "]", a[i], 0, kMaxLayers - 1));
    }
  } else if (c.kind == Kind::static_layers) {
    pol.fail("policy.static_layers", "missing (required for kind static)");
  }
  if (Json const* j = pol.find("skip_attention")) c.skip_attention = pol.boolean("skip_attention", *j);
  if (Json const* j = pol.find("standin")) {
    Fields w(*j, "policy.standin", source);
    c.standin_file = w.string("file", w.need("file"));
    if (c.standin_file.empty()) w.fail("policy.standin.file", "must name a file");
    if (Json const* v = w.find("feeds_decision")) c.standin_feeds = w.boolean("feeds_decision", *v);
    w.done();
  }
  if (Json const* j = pol.find("metric")) {
    std::string const m = pol.string("metric", *j);
    if (m != "cosine") pol.fail("policy.metric", "only \"cosine\" is available at runtime, got \"" + m + "\"");
  }
  pol.done();
  top.done();
  return c;
}

PolicyConfig load_policy_config(std::filesystem::path const& path) {
  std::string const text = read_whole_file<PolicyConfigError>(path, "policy config");
  PolicyConfig c = parse_policy_config(text, path.string());
  // The stand-in file lives beside the config: a relative name is relative to the config.
  if (!c.standin_file.empty() && std::filesystem::path(c.standin_file).is_relative())
    c.standin_file = (path.parent_path() / c.standin_file).string();
  return c;
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
  os << "{\n  \"schema\": \"" << kPolicySchema << "\",\n  \"version\": " << kPolicySchemaVersion
     << ",\n  \"model\": {\"name\": ";
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
  os << (*sep ? "\n  }" : "}") << ",\n  \"policy\": {\n    \"kind\": \"" << kind_name(c.kind)
     << "\",\n    \"threshold\": ";
  number_out(os, c.threshold);
  if (!c.layer_thresholds.empty()) {
    os << ",\n    \"layer_thresholds\": [";
    for (std::size_t i = 0; i < c.layer_thresholds.size(); ++i) {
      os << (i ? ", " : "");
      if (c.layer_thresholds[i])
        number_out(os, *c.layer_thresholds[i]);
      else
        os << "null";
    }
    os << "]";
  }
  os << ",\n    \"span\": ";
  if (c.span >= skipllm::policy::kToColdRegion)
    os << "\"all\"";
  else
    os << c.span;
  os << ",\n    \"spans_per_token\": " << c.spans_per_token << ",\n    \"warmup\": {\"tokens\": " << c.warmup_tokens
     << ", \"every\": " << c.warmup_every << "},\n    \"cold\": {\"first\": " << c.cold_first
     << ", \"last\": " << c.cold_last << ", \"layers\": [";
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
  os << ",\n    \"skip_attention\": " << (c.skip_attention ? "true" : "false");
  if (!c.standin_file.empty()) {
    os << ",\n    \"standin\": {\"file\": ";
    string_out(os, c.standin_file);
    os << ", \"feeds_decision\": " << (c.standin_feeds ? "true" : "false") << "}";
  }
  os << ",\n    \"metric\": \"cosine\"\n  }\n}\n";
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

skipllm::policy::ConfigurablePolicies make_policies(PolicyConfig const& c, int num_layers) {
  namespace sp = skipllm::policy;
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
  sp::ConfigurablePolicies p;
  p.warmup = {c.warmup_tokens, c.warmup_every};
  p.cold = {c.cold_first, c.cold_last, {}};
  for (int const l : c.cold_layers) {
    if (l >= num_layers)
      fail("cold layer " + std::to_string(l) + " is outside the model's " + std::to_string(num_layers) + " layers");
    p.cold.layers.insert(l);
  }
  switch (c.kind) {
    case PolicyConfig::Kind::greedy: p.skip = sp::Greedy{c.threshold, c.span, c.spans_per_token}; break;
    // The greedy rule with no spans decides exactly like policy::Dense; it keeps the threshold
    // and span in the description, which reports have always printed for a dense run.
    case PolicyConfig::Kind::dense: p.skip = sp::Greedy{c.threshold, c.span, 0}; break;
    case PolicyConfig::Kind::layer_greedy: {
      if (c.layer_thresholds.size() != static_cast<std::size_t>(num_layers)) {
        fail("layer_thresholds has " + std::to_string(c.layer_thresholds.size()) + " entries, the model " +
             std::to_string(num_layers) + " layers");
      }
      auto t = sp::LayerThresholds::never(c.span, c.spans_per_token);
      for (int l = 0; l < num_layers; ++l) {
        if (auto const v = c.layer_thresholds[static_cast<std::size_t>(l)]) t.tau[l] = *v;
      }
      p.skip = t;
      break;
    }
    case PolicyConfig::Kind::static_layers: {
      sp::StaticMask m;
      for (int const l : c.static_layers) {
        if (l >= num_layers)
          fail("static layer " + std::to_string(l) + " is outside the model's " + std::to_string(num_layers) +
               " layers");
        m.layers.insert(l);
      }
      p.skip = m;
      break;
    }
    case PolicyConfig::Kind::random_window:
      p.skip = sp::RandomWindow{c.window_length, c.window_first, c.window_last, c.window_seed};
      break;
  }
  return p;
}

std::string describe_policies(skipllm::policy::ConfigurablePolicies const& policies, bool skip_attention) {
  std::string text = skipllm::describe(policies);
  // skipllm::describe starts with "skip=": the mark goes right before the skip policy.
  if (skip_attention) text.insert(std::string_view("skip=").size(), "LayerSkip:");
  return text;
}

}  // namespace skipllm::engine
