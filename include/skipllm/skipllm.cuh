//! @file
//! Umbrella header for users of the CUDA backend (nvcc only): everything in skipllm.hpp plus
//! skipllm/cuda/. Library headers never include it: include what you use.
#pragma once

#include "cuda/begin_sequences_kernel.cuh"
#include "cuda/block_gate.cuh"
#include "cuda/block_residual_similarity.cuh"
#include "cuda/conditional_node.cuh"
#include "cuda/config.cuh"
#include "cuda/decoder_layer.cuh"
#include "cuda/decoder_stack.cuh"
#include "cuda/dense_batch_kernel.cuh"
#include "cuda/device_counters.cuh"
#include "cuda/device_trace.cuh"
#include "cuda/gate.cuh"
#include "cuda/gate_kernel.cuh"
#include "cuda/graph.cuh"
#include "cuda/host.cuh"
#include "cuda/residual_similarity_kernel.cuh"
#include "cuda/storage.cuh"
#include "cuda/token_kernel.cuh"
#include "cuda/workspace.cuh"
#include "skipllm.hpp"
