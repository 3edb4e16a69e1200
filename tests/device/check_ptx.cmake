# cmake -DPTX=<file.ptx> -P check_ptx.cmake: fails when the PTX of tests/device/ptx_kernels.cu
# shows a hazard the CUDA backend guards against:
#   fma.rn.f32      a contracted multiply-add: the similarity would round differently from the
#                   CPU's (every float multiply and add in these kernels belongs to the metric)
#   __local_depot   local memory in a kernel: a per-thread copy of the policy bundle
#   sqrt.approx, div.approx, div.full
#                   an approximate square root or division (--use_fast_math): the score would
#                   not be the IEEE one the CPU computes
if(NOT EXISTS "${PTX}")
  message(FATAL_ERROR "check_ptx: ${PTX} does not exist (build the device_ptx_* targets)")
endif()
file(READ "${PTX}" ptx)
string(FIND "${ptx}" ".entry" entry)
if(entry EQUAL -1)
  message(FATAL_ERROR "check_ptx: ${PTX} holds no kernel")
endif()
set(failed OFF)
foreach(hazard "fma.rn.f32" "__local_depot" "sqrt.approx" "div.approx" "div.full")
  string(FIND "${ptx}" "${hazard}" at)
  if(NOT at EQUAL -1)
    message(SEND_ERROR "check_ptx: ${PTX} contains '${hazard}'")
    set(failed ON)
  endif()
endforeach()
if(NOT failed)
  message(STATUS "check_ptx: no FMA contraction, no local memory, IEEE sqrt and division")
endif()
