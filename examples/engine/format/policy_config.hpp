// Policy config files: a calibrated (or hand-written) skip configuration in a small JSON format,
// loaded by `skipllm generate --config`, `skipllm eval --config`, written by `skipllm calibrate`,
// and baked into policy types by the compile-time configured build (cmake/SkipllmBakedConfig.cmake).
//
// Format (schema "skipllm.policy", version 1; docs/policy_config.md):
//
//   {
//     "schema": "skipllm.policy", "version": 1,
//     "model": {"name": "SmolLM2-135M-Instruct", "layers": 30, "file": "..."},      // what it was calibrated for
//     "produced_by": {"tool": "skipllm calibrate", "command": "...", "date": "...",  // all optional
//                     "data": "...", "notes": "...", "target_skip": 0.25, "achieved_skip": 0.251,
//                     "perplexity_dense": 9.1, "perplexity": 9.4},
//     "policy": {
//       "kind": "greedy",              // greedy | layer_greedy | random_window | static | dense
//       "threshold": 0.97,             // greedy
//       "layer_thresholds": [null, 0.97, ...],   // layer_greedy: one per layer, null = never triggers
//       "span": 2,                     // integer >= 1, or "all" (up to the next cold layer)
//       "spans_per_token": 1,
//       "warmup": {"tokens": 16, "every": 6},
//       "cold": {"first": 1, "last": 1, "layers": [14]},   // counts at each end plus any layers
//       "random_window": {"length": 3.5, "first": 5, "last": 25, "seed": 0},   // random_window
//       "static_layers": [5, 14],      // static: these FFNs are skipped in every non-dense token
//       "skip_attention": false,       // true: a skip skips the whole layer (layer-skip baseline;
//                                      //   the generator's option, not part of the skip policy)
//       "standin": {"file": "x.standin", "feeds_decision": false},   // optional: skipped FFNs of
//                                      //   the layers the file has maps for run its fitted map
//                                      //   instead (docs/standin.md); a relative file is
//                                      //   relative to the config file
//       "metric": "cosine"
//     }
//   }
//
// Parsing is strict: unknown fields, wrong types and out-of-range values are errors whose
// message names the file and the field (e.g. "policy.cold.first").
//
// PolicyConfig is the format's one C++ type; make_policies() is the one way from it to the
// library's policies (skipllm::policy::ConfigurablePolicies). The CLI's policy options override
// a PolicyConfig (cli/options.hpp) rather than build policies of their own.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <skipllm/policy/bundle.hpp>

namespace skipllm::engine {

struct PolicyConfigError : std::runtime_error {
  using runtime_error::runtime_error;
};

inline constexpr std::string_view kPolicySchema = "skipllm.policy";
inline constexpr int kPolicySchemaVersion = 1;

struct PolicyConfig {
  enum class Kind { greedy, layer_greedy, random_window, static_layers, dense };

  // ---- the policy ----
  Kind kind = Kind::greedy;
  float threshold = 0.95f;
  std::vector<std::optional<float>> layer_thresholds;  //!< layer_greedy: [model layers]; nullopt = never
  int span = 8;                                        //!< skipllm::policy::kToColdRegion for "all"
  int spans_per_token = 1;
  int warmup_tokens = 16;
  int warmup_every = 6;
  int cold_first = 5;
  int cold_last = 5;
  std::vector<int> cold_layers;  //!< explicit cold layers besides the first/last counts
  float window_length = 4.0f;    //!< random_window
  int window_first = 0;
  int window_last = 1 << 30;
  std::uint32_t window_seed = 0;
  std::vector<int> static_layers;  //!< static_layers: skipped in every token that may skip
  bool skip_attention = false;     //!< not a skip policy: a Generator option (GeneratorOptions)
  std::string standin_file;        //!< stand-in maps (format/standin_file.hpp); empty: a skip leaves nothing
  bool standin_feeds = false;      //!< a stand-in's similarity feeds the next layer's decision

  // ---- provenance ----
  std::string model_name;
  int model_layers = 0;  //!< 0: any depth
  std::string model_file;
  std::string tool, command, date, data, notes;
  std::optional<double> target_skip, achieved_skip, perplexity_dense, perplexity;
};

std::string_view kind_name(PolicyConfig::Kind kind);

//! Parses the JSON text of a config; `source` names it in messages. Throws PolicyConfigError.
PolicyConfig parse_policy_config(std::string_view text, std::string const& source = "policy config");
//! Reads and parses a file. Throws PolicyConfigError (also when the file cannot be read).
PolicyConfig load_policy_config(std::filesystem::path const& path);

//! The JSON text of a config (what save_policy_config writes; parse_policy_config reads it back
//! unchanged).
std::string policy_config_json(PolicyConfig const& config);
//! Writes the config. Throws PolicyConfigError when the file cannot be written.
void save_policy_config(std::filesystem::path const& path, PolicyConfig const& config);

//! The library policies of a config, for a model with `num_layers` layers: its skip policy
//! (any kind) as a policy::AnySkip, its cold layers and warm-up. Kind "dense" gives the greedy
//! rule with no spans. `skip_attention` is not a policy: the Generator takes it as an option.
//! Throws PolicyConfigError when the config does not fit the model (depth, cold layers,
//! thresholds).
skipllm::policy::ConfigurablePolicies make_policies(PolicyConfig const& config, int num_layers);

//! What reports print for a run: skipllm::describe(policies), the skip policy marked
//! "LayerSkip:" when a skip skips the whole layer ("skip=LayerSkip:Greedy(...) cold=...").
std::string describe_policies(skipllm::policy::ConfigurablePolicies const& policies, bool skip_attention);

}  // namespace skipllm::engine
