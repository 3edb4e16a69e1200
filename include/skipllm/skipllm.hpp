//! @file
//! Umbrella header for users. Library headers never include it: include what you use.
#pragma once

#include "config.hpp"
#include "concepts.hpp"
#include "cpu/residual_similarity.hpp"
#include "decision.hpp"
#include "decoder_layer.hpp"
#include "decoder_stack.hpp"
#include "json.hpp"
#include "layer_mask.hpp"
#include "numeric.hpp"
#include "policy/bundle.hpp"
#include "policy/cold_region.hpp"
#include "policy/describe.hpp"
#include "policy/similarity.hpp"
#include "policy/sink_warmup.hpp"
#include "policy/skip_policy.hpp"
#include "report.hpp"
#include "row_view.hpp"
#include "skip_state.hpp"
#include "statistics.hpp"
#include "trace.hpp"
