//! @file
//! The x86 instruction-set extensions the engine's kernels are compiled for, as this CPU reports
//! them at run time. Kernels carry per-function target attributes; these checks decide which of
//! them may run.
#pragma once

namespace skipllm::engine {

//! AVX2, FMA and F16C: the float and integer AVX2 kernels. False on non-x86 builds.
bool cpu_has_avx2();

//! AVX-512 VNNI with AVX-512 VL and BW (and AVX2, which those kernels also use): the integer
//! kernels built on _mm256_dpbusd_epi32. False on non-x86 builds.
bool cpu_has_avx512_vnni();

}  // namespace skipllm::engine
