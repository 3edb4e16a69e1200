#include "model/standin.hpp"

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>

#include "format/quant.hpp"

namespace skipllm::engine {

namespace {

std::vector<float> widen(std::vector<std::uint16_t> const& h) {
  std::vector<float> out(h.size());
  std::transform(h.begin(), h.end(), out.begin(), half_to_float);
  return out;
}

float dot(float const* a, float const* b, int n) {
  float s = 0.0f;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

StandIns::StandIns(StandInMaps const& maps)
    : hidden_(maps.hidden), layers_(maps.layers), by_layer_(static_cast<std::size_t>(maps.layers)) {
  for (Map& m : by_layer_) m.rank = -1;
  for (StandInMap const& s : maps.maps) {
    Map& m = by_layer_.at(static_cast<std::size_t>(s.layer));
    m.rank = s.rank;
    m.a = widen(s.a);
    m.v = widen(s.v);
    m.u = widen(s.u);
    m.bias = widen(s.bias);
    m.bytes = s.bytes();
    mask_.insert(s.layer);
  }
}

std::size_t StandIns::bytes(int layer) const noexcept {
  return has(layer) ? by_layer_[static_cast<std::size_t>(layer)].bytes : 0;
}

void StandIns::apply(int layer, float const* n, float* g, float* scratch) const {
  if (!has(layer)) throw std::logic_error("engine: no stand-in map for layer " + std::to_string(layer));
  Map const& m = by_layer_[static_cast<std::size_t>(layer)];
  int const d = hidden_;
  if (m.rank == 0) {
    for (int o = 0; o < d; ++o) g[o] = dot(&m.a[static_cast<std::size_t>(o) * d], n, d) + m.bias[o];
    return;
  }
  for (int k = 0; k < m.rank; ++k) scratch[k] = dot(&m.v[static_cast<std::size_t>(k) * d], n, d);
  for (int o = 0; o < d; ++o) g[o] = dot(&m.u[static_cast<std::size_t>(o) * m.rank], scratch, m.rank) + m.bias[o];
}

skipllm::policy::StandIn attach_standins(StandInMaps const& maps, std::string const& source, bool feeds,
                                         LlamaModel& model) {
  check_fits(maps, model.config().n_embd, model.config().n_layers, source);
  auto standins = std::make_shared<StandIns const>(maps);
  skipllm::policy::StandIn const action{standins->layer_mask(), feeds};
  model.set_standins(std::move(standins));
  return action;
}

void attach_standins(PolicyConfig const& config, LlamaModel& model, skipllm::policy::ConfigurablePolicies& policies) {
  if (config.standin_file.empty()) return;
  policies.action =
      attach_standins(load_standin_maps(config.standin_file), config.standin_file, config.standin_feeds, model);
}

}  // namespace skipllm::engine
