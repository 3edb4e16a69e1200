#include "cli/summary_json.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>

#include <skipllm/json.hpp>

namespace skipllm::cli {

void write_json_float(std::ostream& os, double value) {
  if (!std::isfinite(value)) {
    os << "null";
    return;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.7g", value);
  os << buf;
}

void write_nested_statistics_json(std::ostream& os, skipllm::SkipStatistics const& statistics,
                                  std::string const& description) {
  std::ostringstream stats;
  skipllm::write_json(stats, statistics, description);
  std::string body = stats.str();
  while (!body.empty() && (body.back() == '\n' || body.back() == ' ')) body.pop_back();
  // Its strings escape newlines, so every raw newline in it is structure.
  for (char const c : body) {
    os << c;
    if (c == '\n') os << "  ";
  }
}

}  // namespace skipllm::cli
