//! @file
//! A plain-text summary of the statistics: the ratios and a per-layer table with bars.
//! Host-only; what the examples and the CLI print at the end of a run.
#pragma once

#include <cstdio>
#include <ostream>
#include <string>
#include <string_view>

#include "statistics.hpp"

namespace skipllm {

inline void print_summary(std::ostream& os, SkipStatistics const& s, std::string_view policy) {
  char line[160];
  os << "policy: " << policy << "\n";
  std::snprintf(line, sizeof line,
                "decode tokens: %llu (dense: %llu), prefill tokens: %llu\n"
                "FFN blocks skipped: %llu of %llu  ratio %.1f%%  (eligible %.1f%%, after warm-up %.1f%%)\n",
                static_cast<unsigned long long>(s.tokens()), static_cast<unsigned long long>(s.dense_tokens()),
                static_cast<unsigned long long>(s.prefill_tokens()),
                static_cast<unsigned long long>(s.skipped_blocks()), static_cast<unsigned long long>(s.ffn_blocks()),
                100 * s.skip_ratio(), 100 * s.skip_ratio_eligible(), 100 * s.skip_ratio_after_warmup());
  os << line << "layer      ran  skipped     cold    dense   skip%\n";
  for (int l = 0; l < s.num_layers(); ++l) {
    LayerCounts const& c = s.layers()[static_cast<std::size_t>(l)];
    double const ratio = c.total() ? static_cast<double>(c.skipped) / static_cast<double>(c.total()) : 0.0;
    std::snprintf(line, sizeof line, "%5d %8llu %8llu %8llu %8llu  %5.1f%% ", l, static_cast<unsigned long long>(c.ran),
                  static_cast<unsigned long long>(c.skipped), static_cast<unsigned long long>(c.ran_cold),
                  static_cast<unsigned long long>(c.ran_dense), 100 * ratio);
    os << line << std::string(static_cast<std::size_t>(ratio * 30 + 0.5), '#') << "\n";
  }
}

}  // namespace skipllm
