// The fitted stand-ins of a model, ready to run: LlamaHost::standin_block computes
// g = A * norm(h) + b with them for the rows whose FFN a policy skipped (format/standin_file.hpp
// holds the stored form, docs/standin.md the method).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <skipllm/layer_mask.hpp>
#include <skipllm/policy/bundle.hpp>

#include "format/policy_config.hpp"
#include "format/standin_file.hpp"
#include "model/llama_model.hpp"

namespace skipllm::engine {

class StandIns {
 public:
  //! Widens the stored binary16 values once (the product then runs in fp32); `maps` must have
  //! been checked against the model (check_fits).
  explicit StandIns(StandInMaps const& maps);

  int hidden() const noexcept { return hidden_; }
  int layers() const noexcept { return layers_; }
  bool has(int layer) const noexcept { return mask_.contains(layer); }
  skipllm::LayerMask layer_mask() const noexcept { return mask_; }
  //! Bytes of the stored map of `layer` (what one use reads in its stored form); 0 without one.
  std::size_t bytes(int layer) const noexcept;

  //! g = A n + b for layer `layer` (which must have a map); `scratch` holds at least rank floats.
  void apply(int layer, float const* n, float* g, float* scratch) const;

 private:
  struct Map {
    int rank = 0;             // 0: full
    std::vector<float> a;     // full: [hidden][hidden]
    std::vector<float> v;     // [rank][hidden]
    std::vector<float> u;     // [hidden][rank]
    std::vector<float> bias;  // [hidden]
    std::size_t bytes = 0;
  };
  int hidden_ = 0;
  int layers_ = 0;
  skipllm::LayerMask mask_;
  std::vector<Map> by_layer_;  // [layers]; rank < 0 where there is no map
};

//! Checks `maps` (read from `source`, for messages) against `model` (hidden size, depth), makes
//! them the model's stand-ins and returns the skip action that stands in on the layers they map
//! (feeding the next decision when `feeds`). Throws StandInFileError.
skipllm::policy::StandIn attach_standins(StandInMaps const& maps, std::string const& source, bool feeds,
                                         LlamaModel& model);

//! Applies a config's stand-ins: loads the file it names, checks it against `model` (hidden
//! size, depth), sets the model's stand-ins and makes `policies` stand in on the layers that
//! have a map (feeding the next decision as the config says). Nothing when the config names no
//! file. Throws StandInFileError.
void attach_standins(PolicyConfig const& config, LlamaModel& model, skipllm::policy::ConfigurablePolicies& policies);

}  // namespace skipllm::engine
