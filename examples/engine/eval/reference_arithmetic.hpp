//! @file
//! The arithmetic every evaluation and calibration runs in.
#pragma once

#include "model/generator.hpp"

namespace skipllm::engine {

//! `options` with fp32 activations and an fp32 KV cache: the engine's reference arithmetic,
//! whatever `generate`'s defaults are. A quality difference between two policies then comes from
//! their decisions alone, and the figures in docs/results.md stay reproducible when a faster
//! default (int8 activations, an fp16 KV cache) changes `generate`.
inline GeneratorOptions reference_arithmetic(GeneratorOptions options = {}) {
  options.precision = ActivationPrecision::kFloat32;
  options.kv_cache = KvCacheType::kFloat32;
  return options;
}

}  // namespace skipllm::engine
