// eval's tasks on the CUDA engine (--device cuda): CudaGenerator behind eval's TaskGenerator.
// Here, not in eval/ or cuda/: eval never includes the device room, and cuda/ never includes
// eval/; the command line is the one place that knows both.
#pragma once

#include "eval/generation.hpp"
#include "model/llama_model.hpp"

namespace skipllm::cli {

//! Makes CudaGenerators for eval's tasks: fp32 weights (the CPU engine's dequantized values),
//! fp32 activations and KV cache, i.e. the reference arithmetic eval runs in on the CPU. Throws
//! std::invalid_argument for a spec with skip_attention (the CUDA engine does not run the
//! layer-skip baseline). `model` must outlive the factory.
engine::eval::GeneratorFactory cuda_task_generators(engine::LlamaModel const& model);

}  // namespace skipllm::cli
