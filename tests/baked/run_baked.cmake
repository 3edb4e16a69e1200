# cmake -DSOURCE=<skipllm> -DWORK=<scratch> -DCXX=<compiler> -DCONFIG=<config.json> -P run_baked.cmake
# The compile-time configured build, as a user would make it: configure skipllm alone with
# -DSKIPLLM_BAKED_CONFIG=CONFIG, build the check, run it (baked decisions == runtime decisions).
file(REMOVE_RECURSE "${WORK}")
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "baked config test failed: ${ARGN}")
  endif()
endfunction()
run(${CMAKE_COMMAND} -S ${SOURCE} -B ${WORK} -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release
    -DSKIPLLM_BUILD_TESTS=OFF -DSKIPLLM_BUILD_EXAMPLES=OFF -DSKIPLLM_BUILD_BENCHMARKS=OFF
    -DSKIPLLM_ENABLE_CUDA=OFF -DSKIPLLM_BAKED_CONFIG=${CONFIG})
run(${CMAKE_COMMAND} --build ${WORK} --target baked_config_check)
run(${WORK}/examples/baked_config/baked_config_check)
