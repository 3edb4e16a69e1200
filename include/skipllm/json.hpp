//! @file
//! JSON export of the statistics and the decision trace (schema: docs/statistics.md).
//!
//! Host-only and dependency-free. NaN scores (skipped FFNs) are written as null, since JSON
//! has no NaN.
#pragma once

#include <cstdio>
#include <ostream>
#include <string>
#include <string_view>

#include "numeric.hpp"
#include "statistics.hpp"
#include "trace.hpp"

namespace skipllm {

//! One letter per decision in trace strings: R run, S skip, C cold, D dense token, I stood in
//! (skipped, the stand-in ran).
constexpr char decision_letter(FfnDecision d) noexcept {
  switch (d) {
    case FfnDecision::kRun: return 'R';
    case FfnDecision::kSkip: return 'S';
    case FfnDecision::kRunCold: return 'C';
    case FfnDecision::kRunDense: return 'D';
    case FfnDecision::kStandIn: return 'I';
  }
  return '?';
}

//! Writes `s` as a JSON string literal (quotes added; control characters escaped). Engines use
//! it to write their own JSON records in the same dialect as write_json().
inline void write_json_string(std::ostream& os, std::string_view s) {
  os << '"';
  for (char const c : s) {
    switch (c) {
      case '"': os << "\\\""; break;
      case '\\': os << "\\\\"; break;
      case '\n': os << "\\n"; break;
      case '\t': os << "\\t"; break;
      case '\r': os << "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          os << buf;
        } else {
          os << c;
        }
    }
  }
  os << '"';
}

//! Writes `v` with 9 significant digits (round-trips a float); NaN and +-Inf as null.
inline void write_json_number(std::ostream& os, double v) {
  if (!is_finite(static_cast<float>(v))) {
    os << "null";
    return;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  os << buf;
}

namespace detail {

inline void write_layers(std::ostream& os, SkipStatistics const& s) {
  os << "  \"layers\": [";
  for (int l = 0; l < s.num_layers(); ++l) {
    LayerCounts const& c = s.layers()[static_cast<std::size_t>(l)];
    os << (l ? ",\n" : "\n") << "    {\"layer\": " << l << ", \"ran\": " << c.ran << ", \"skipped\": " << c.skipped
       << ", \"stood_in\": " << c.stood_in << ", \"ran_cold\": " << c.ran_cold << ", \"ran_dense\": " << c.ran_dense
       << ", \"skip_ratio\": ";
    write_json_number(os, c.total() ? static_cast<double>(c.skipped) / static_cast<double>(c.total()) : 0.0);
    os << "}";
  }
  os << "\n  ]";
}

inline void write_trace(std::ostream& os, DecisionTrace const& t) {
  os << ",\n  \"trace\": [";
  for (std::size_t i = 0; i < t.size(); ++i) {
    auto const tok = t.token(i);
    os << (i ? ",\n" : "\n") << "    {\"slot\": " << tok.slot << ", \"decode_index\": " << tok.decode_index
       << ", \"decisions\": \"";
    for (FfnDecision const d : t.decisions(i)) os << decision_letter(d);
    os << "\", \"similarity\": [";
    char const* sep = "";
    for (float const v : t.scores(i)) {
      os << sep;
      write_json_number(os, v);
      sep = ", ";
    }
    os << "]}";
  }
  os << "\n  ]";
}

}  // namespace detail

//! Writes `{"schema": "skipllm.stats/2", ...}`; the trace is included when given.
inline void write_json(std::ostream& os, SkipStatistics const& s, std::string_view policy,
                       DecisionTrace const* trace = nullptr) {
  os << "{\n  \"schema\": \"skipllm.stats/2\",\n  \"policy\": ";
  write_json_string(os, policy);
  os << ",\n  \"num_layers\": " << s.num_layers() << ",\n  \"warmup_tokens\": " << s.warmup_tokens()
     << ",\n  \"prefill_tokens\": " << s.prefill_tokens() << ",\n  \"decode_tokens\": " << s.tokens()
     << ",\n  \"dense_tokens\": " << s.dense_tokens() << ",\n  \"ffn_blocks\": " << s.ffn_blocks()
     << ",\n  \"skipped_blocks\": " << s.skipped_blocks() << ",\n  \"stood_in_blocks\": " << s.stood_in_blocks()
     << ",\n  \"eligible_blocks\": " << s.eligible_blocks() << ",\n  \"skip_ratio\": {\"all\": ";
  write_json_number(os, s.skip_ratio());
  os << ", \"eligible\": ";
  write_json_number(os, s.skip_ratio_eligible());
  os << ", \"after_warmup\": ";
  write_json_number(os, s.skip_ratio_after_warmup());
  os << "},\n";
  detail::write_layers(os, s);
  if (trace != nullptr) detail::write_trace(os, *trace);
  os << "\n}\n";
}

}  // namespace skipllm
