// An SVG picture of a skipllm::DecisionTrace: one cell per (decoded token, layer), layers down the
// y axis (layer 0 at the top, as in the trace strings), tokens along the x axis in trace order.
//
// Cell colours: skipped (S) bright amber; ran because the policy chose to (R) blue; ran because
// the layer is cold (C) dark slate; ran because the token is dense, i.e. warm-up or refresh (D)
// grey. A title states the skip ratio, a legend the counts. Cells shrink to 1 px wide for long
// runs, so 30 layers x 1,000 tokens still fits a screen.
//
// Every cell is one <rect class="R|S|C|D"> inside <g id="cells">, so the file is easy to check
// or post-process; legend swatches carry class "swatch" as well.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include <skipllm/trace.hpp>

namespace skipllm::engine {

struct HeatmapOptions {
  std::string title = "skipllm FFN decisions";
  std::string subtitle;       //!< lines under the title (split at '\n'): e.g. the model, the policy
  int max_plot_width = 1400;  //!< px for the token axis; wider runs get 1 px cells (and overflow)
  int max_cell_width = 16;    //!< px
};

//! Cell counts by decision, as the title and legend report them.
struct HeatmapCounts {
  std::uint64_t ran = 0, skipped = 0, cold = 0, dense = 0, stood_in = 0;
  std::uint64_t total() const noexcept { return ran + skipped + cold + dense + stood_in; }
};

HeatmapCounts count_decisions(skipllm::DecisionTrace const& trace);

void write_heatmap_svg(std::ostream& os, skipllm::DecisionTrace const& trace, HeatmapOptions const& options = {});
std::string heatmap_svg(skipllm::DecisionTrace const& trace, HeatmapOptions const& options = {});

}  // namespace skipllm::engine
