// The similarity profile of `skipllm eval --task profile` as an SVG line plot (--plot).
#pragma once

#include <ostream>
#include <string>

#include "eval/eval_tasks.hpp"

namespace skipllm::engine::eval {

//! SVG line plot of a profile: mean cosine per layer with a mean ± standard deviation band,
//! the p10 and p90 curves and the threshold as a dashed line, in two panels: all layers (from a
//! multiple of 0.25 up to 1), and a zoom on the typical layers (those whose mean is within 0.1
//! of the median layer mean), where layers off the scale are marked at the edge with their mean.
void write_profile_svg(std::ostream& os, ProfileResult const& profile, std::string const& subtitle);

}  // namespace skipllm::engine::eval
