// `skipllm calibrate`: choose cold layers and threshold(s) that reach a target FFN skip ratio on
// calibration text while keeping its next-token quality, and write a policy config file
// (policy_config.hpp). The search itself is calibrate.hpp; this is its command line.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace skipllm::cli {

struct CalibrateOptions {
  std::optional<std::string> model;   //!< -m; default: $SKIPLLM_MODEL, then the cached SmolLM2
  double target_skip = 0.25;          //!< --target-skip (required)
  bool per_layer = false;             //!< --per-layer
  bool static_layers = false;         //!< --static
  std::vector<std::string> texts;     //!< --text FILE[,FILE...]; default: the dev set's calibration split
  std::optional<std::string> output;  //!< -o FILE (required)
  int window = 128;                   //!< tokens per calibration sequence
  int max_positions = 768;            //!< scored positions in all (0: all of the text)
  int warmup = 16;
  int refresh_every = 0;
  bool sensitivity = true;  //!< --no-sensitivity skips the per-layer sensitivity runs
  double tolerance = 0.01;
  int max_iterations = 9;
  std::vector<std::pair<int, int>> candidates;  //!< --candidates 2x4,4x2,allx1
  std::vector<int> cold;                        //!< --cold 0,29: use these cold layers (no sensitivity runs)
  std::optional<std::string> sensitivity_file;  //!< --sensitivity FILE: reuse (or save) the per-layer sensitivity
  int threads = 0;
  bool quiet = false;
  // ---- stand-ins (docs/standin.md) ----
  bool standin = false;                     //!< --standin: fit stand-ins, calibrate with them
  int standin_rank = 64;                    //!< --standin-rank N|full (0 = full)
  bool standin_feeds = false;               //!< --standin-feeds: a stand-in's score feeds the next decision
  int standin_tokens = 0;                   //!< --standin-tokens N: fitting tokens (0: 10 x the hidden size)
  std::optional<std::string> standin_from;  //!< --standin-from FILE: reuse fitted maps instead of fitting
  std::optional<std::string> standin_save;  //!< --standin-save FILE: also write the maps of every layer
};

//! Parses args[first..] (after "calibrate"); false when --help was seen. Throws UsageError.
bool parse_calibrate_options(std::vector<std::string> const& args, std::size_t first, CalibrateOptions& options,
                             std::vector<std::string>& warnings);

std::string calibrate_help_text();

//! Runs the calibration; returns the exit status (cli/commands.hpp).
int run_calibrate(CalibrateOptions const& options, std::ostream& out, std::ostream& err);

//! The calibration split shipped with the dev set: every *.txt under
//! <data>/calibration (data: $SKIPLLM_DATA, else the source tree's examples/engine/data).
std::vector<std::string> default_calibration_texts();

}  // namespace skipllm::cli
