# cmake -DSOURCE=<skipllm> -DFIXTURES=<tests/fixtures/policy_config> -DWORK=<scratch> -P check_invalid.cmake
# The baker refuses every invalid fixture, naming the file and the field as invalid/errors.txt
# says (the C++ and Python readers are held to the same list). Each file is baked in a separate
# cmake -P, since a refusal ends the process.
file(MAKE_DIRECTORY "${WORK}")
file(STRINGS "${FIXTURES}/invalid/errors.txt" cases REGEX "^[^#]")
set(checked 0)
foreach(entry IN LISTS cases)
  string(REGEX MATCH "^([^ ]+) +(.*)$" _ "${entry}")
  set(name "${CMAKE_MATCH_1}")
  set(expected "${CMAKE_MATCH_2}")
  set(config "${FIXTURES}/invalid/${name}")
  execute_process(COMMAND ${CMAKE_COMMAND} -DSOURCE=${SOURCE} -DCONFIG=${config} -DHEADER=${WORK}/${name}.hpp
                          -P "${CMAKE_CURRENT_LIST_DIR}/bake_one.cmake"
                  RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_QUIET)
  string(REGEX REPLACE "\n *" " " err "${err}")  # message() wraps long lines
  string(FIND "${err}" "${expected}" at_field)
  string(FIND "${err}" "${config}" at_file)
  if(rc EQUAL 0)
    message(SEND_ERROR "${name}: baked, but it is invalid (${expected})")
  elseif(at_field EQUAL -1 OR at_file EQUAL -1)
    message(SEND_ERROR "${name}: the message does not name ${config} and \"${expected}\":\n${err}")
  endif()
  math(EXPR checked "${checked} + 1")
endforeach()
if(checked LESS 20)
  message(FATAL_ERROR "only ${checked} invalid fixtures found in ${FIXTURES}/invalid/errors.txt")
endif()
message(STATUS "${checked} invalid configs refused")
