# cmake -DMODE=<package|subdirectory|fetchcontent> -DSOURCE=<skipllm> -DWORK=<scratch dir>
#       -DCXX=<compiler> -P run_consumer.cmake
# Builds tests/consumer against skipllm the way a user would (baking a policy config too), then
# runs both programs.
file(REMOVE_RECURSE "${WORK}")
set(consumer_args -DCMAKE_CXX_COMPILER=${CXX} -DSKIPLLM_CONSUMER_MODE=${MODE})

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer test (${MODE}) failed: ${ARGN}")
  endif()
endfunction()

if(MODE STREQUAL "package")
  # Install skipllm alone (no tests) into a private prefix first.
  run(${CMAKE_COMMAND} -S ${SOURCE} -B ${WORK}/skipllm-build -DCMAKE_CXX_COMPILER=${CXX}
      -DSKIPLLM_BUILD_TESTS=OFF -DSKIPLLM_BUILD_EXAMPLES=OFF -DSKIPLLM_BUILD_BENCHMARKS=OFF
      -DSKIPLLM_ENABLE_CUDA=OFF -DCMAKE_INSTALL_PREFIX=${WORK}/prefix)
  run(${CMAKE_COMMAND} --install ${WORK}/skipllm-build)
  list(APPEND consumer_args -DCMAKE_PREFIX_PATH=${WORK}/prefix)
else()
  list(APPEND consumer_args -DSKIPLLM_SOURCE_DIR=${SOURCE} -DSKIPLLM_ENABLE_CUDA=OFF)
endif()
run(${CMAKE_COMMAND} -S ${SOURCE}/tests/consumer -B ${WORK}/consumer-build ${consumer_args})
run(${CMAKE_COMMAND} --build ${WORK}/consumer-build)
run(${WORK}/consumer-build/consumer)
run(${WORK}/consumer-build/consumer_baked)
