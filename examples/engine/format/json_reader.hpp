// The engine's one JSON reader: nlohmann/json, with the errors the engine reports. Policy config
// files (format/policy_config) and the eval data files (eval/datasets) are read through it, so
// both accept exactly RFC 8259 JSON (UTF-8, no comments, no trailing commas) and report a
// malformed text the same way, with its line and column.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace skipllm::engine {

//! Malformed JSON. what() is "<reason> at line L, column C" (or "<reason>" where nlohmann gives
//! no position); the parts are kept apart for callers that name the position their own way.
class JsonSyntaxError : public std::runtime_error {
 public:
  JsonSyntaxError(std::string reason, std::size_t line, std::size_t column);

  std::string reason;
  std::size_t line = 0;    //!< 1-based; 0: unknown
  std::size_t column = 0;  //!< 1-based, in bytes; 0: unknown
};

//! What a repeated key in one object means. JSON leaves it open; a config file must not be
//! ambiguous, a data file follows common practice (the last one counts).
enum class DuplicateKeys { last_wins, reject };

//! Parses one JSON text. Throws JsonSyntaxError, also for a repeated key under
//! DuplicateKeys::reject (its reason names the key's path, e.g. "duplicate key policy.threshold").
nlohmann::json parse_json(std::string_view text, DuplicateKeys duplicates = DuplicateKeys::last_wins);

}  // namespace skipllm::engine
