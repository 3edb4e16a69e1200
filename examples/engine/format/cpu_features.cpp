#include "format/cpu_features.hpp"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#  include <cpuid.h>
#  define SKIPLLM_ENGINE_X86 1
#else
#  define SKIPLLM_ENGINE_X86 0
#endif

namespace skipllm::engine {

bool cpu_has_avx2() {
#if SKIPLLM_ENGINE_X86
  static bool const ok = [] {
    // F16C straight from CPUID: clang's __builtin_cpu_supports does not know "f16c".
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    bool const f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
    return f16c && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return ok;
#else
  return false;
#endif
}

bool cpu_has_avx512_vnni() {
#if SKIPLLM_ENGINE_X86
  // __builtin_cpu_supports also checks that the OS saves the AVX-512 register state.
  static bool const ok = cpu_has_avx2() && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
                         __builtin_cpu_supports("avx512bw");
  return ok;
#else
  return false;
#endif
}

}  // namespace skipllm::engine
