// Pieces shared by the JSON summaries of generate (skipllm.cli/1) and eval (skipllm.eval/1).
// Strings and measured numbers use the library's write_json_string/write_json_number.
#pragma once

#include <ostream>
#include <string>

#include <skipllm/statistics.hpp>

namespace skipllm::cli {

//! A float from the command line or a policy config, to seven significant digits, so that 0.95
//! reads back as 0.95 rather than 0.949999988; null when not finite.
void write_json_float(std::ostream& os, double value);

//! The library's statistics object (schema skipllm.stats/2) as the value of a top-level field:
//! indented one level, without its trailing newline.
void write_nested_statistics_json(std::ostream& os, skipllm::SkipStatistics const& statistics,
                                  std::string const& description);

}  // namespace skipllm::cli
