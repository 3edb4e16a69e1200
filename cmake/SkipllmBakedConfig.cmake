# skipllm_bake_policy_config(CONFIG <file.json> HEADER <out.hpp>)
#
# Reads a policy config file (schema "skipllm.policy" version 1, docs/policy_config.md) with
# CMake's string(JSON) and writes a header that bakes it into compile-time policy types:
#
#   namespace skipllm::baked {
#     using Skip    = policy::GreedyThreshold<tau, span, spans>     (kind greedy)
#                   | a struct holding a constexpr policy::LayerThresholds  (layer_greedy)
#                   | a struct holding a constexpr policy::RandomWindow     (random_window)
#                   | a struct holding a constexpr LayerMask (policy::StaticMask) (static)
#                   | policy::Dense                                          (dense)
#     using Cold    = policy::FixedColdSet<first, last, layers...>;
#     using Warm    = policy::Warmup<tokens, every>;
#     using BakedPolicies = skipllm::Policies<Skip, Cold, Warm, policy::Cosine>;
#     inline constexpr bool kSkipAttention;   // the engine-level layer-skip flag
#     inline constexpr char kConfigFile[];    // where it came from
#   }
#
# Only CMake is needed (no Python). Fields are checked as strictly as the runtime loader checks
# them where CMake can (schema, version, kind); the example/test built with the header compares
# every decision with the runtime loader's (examples/baked_config).

function(_skipllm_json_get out json)
  string(JSON value ERROR_VARIABLE err GET "${json}" ${ARGN})
  if(err)
    set(${out} "" PARENT_SCOPE)
  else()
    set(${out} "${value}" PARENT_SCOPE)
  endif()
endfunction()

function(_skipllm_float out value)
  # A JSON number as a C++ float literal.
  if(NOT value MATCHES "^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$")
    message(FATAL_ERROR "skipllm baked config: '${value}' is not a number")
  endif()
  if(value MATCHES "[.eE]")
    set(${out} "${value}f" PARENT_SCOPE)
  else()
    set(${out} "${value}.0f" PARENT_SCOPE)
  endif()
endfunction()

function(skipllm_bake_policy_config)
  cmake_parse_arguments(arg "" "CONFIG;HEADER" "" ${ARGN})
  if(NOT EXISTS "${arg_CONFIG}")
    message(FATAL_ERROR "SKIPLLM_BAKED_CONFIG: ${arg_CONFIG} does not exist")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${arg_CONFIG}")
  file(READ "${arg_CONFIG}" json)
  string(JSON schema ERROR_VARIABLE err GET "${json}" schema)
  if(err OR NOT schema STREQUAL "skipllm.policy")
    message(FATAL_ERROR "SKIPLLM_BAKED_CONFIG ${arg_CONFIG}: field 'schema' must be \"skipllm.policy\" ${err}")
  endif()
  _skipllm_json_get(version "${json}" version)
  if(NOT version STREQUAL "1")
    message(FATAL_ERROR "SKIPLLM_BAKED_CONFIG ${arg_CONFIG}: field 'version' must be 1, got '${version}'")
  endif()
  _skipllm_json_get(kind "${json}" policy kind)
  _skipllm_json_get(threshold "${json}" policy threshold)
  _skipllm_json_get(span "${json}" policy span)
  _skipllm_json_get(spans "${json}" policy spans_per_token)
  _skipllm_json_get(wtokens "${json}" policy warmup tokens)
  _skipllm_json_get(wevery "${json}" policy warmup every)
  _skipllm_json_get(cfirst "${json}" policy cold first)
  _skipllm_json_get(clast "${json}" policy cold last)
  _skipllm_json_get(skip_attention "${json}" policy skip_attention)
  # Defaults: the runtime loader's (policy_config.hpp).
  if(span STREQUAL "")
    set(span 8)
  elseif(span STREQUAL "all")
    set(span "skipllm::policy::kToColdRegion")
  endif()
  if(spans STREQUAL "")
    set(spans 1)
  endif()
  if(wtokens STREQUAL "")
    set(wtokens 16)
    set(wevery 6)
  endif()
  if(cfirst STREQUAL "")
    set(cfirst 5)
    set(clast 5)
  endif()
  if(skip_attention STREQUAL "ON" OR skip_attention STREQUAL "true")
    set(skip_attention true)
  else()
    set(skip_attention false)
  endif()
  set(cold_layers "")
  string(JSON ncold ERROR_VARIABLE err LENGTH "${json}" policy cold layers)
  if(NOT err AND ncold GREATER 0)
    math(EXPR last_index "${ncold} - 1")
    foreach(i RANGE ${last_index})
      string(JSON l GET "${json}" policy cold layers ${i})
      string(APPEND cold_layers ", ${l}")
    endforeach()
  endif()

  set(skip_decl "")
  if(kind STREQUAL "greedy")
    _skipllm_float(tau "${threshold}")
    set(skip_decl "using Skip = skipllm::policy::GreedyThreshold<${tau}, ${span}, ${spans}>;")
  elseif(kind STREQUAL "dense")
    set(skip_decl "using Skip = skipllm::policy::Dense;")
  elseif(kind STREQUAL "layer_greedy")
    string(JSON n LENGTH "${json}" policy layer_thresholds)
    math(EXPR last_index "${n} - 1")
    set(sets "")
    foreach(i RANGE ${last_index})
      string(JSON t GET "${json}" policy layer_thresholds ${i})
      if(NOT t STREQUAL "null" AND NOT t STREQUAL "")
        _skipllm_float(tf "${t}")
        string(APPEND sets "    p.tau[${i}] = ${tf};\n")
      endif()
    endforeach()
    set(skip_decl "struct Skip {
  static constexpr skipllm::policy::LayerThresholds value = [] {
    auto p = skipllm::policy::LayerThresholds::never(${span}, ${spans});
${sets}    return p;
  }();
  SKIPLLM_HOST_DEVICE constexpr void begin_token(skipllm::SkipState& s) const noexcept { value.begin_token(s); }
  SKIPLLM_HOST_DEVICE constexpr bool should_skip(skipllm::SkipState& s, skipllm::LayerContext c) const noexcept {
    return value.should_skip(s, c);
  }
};")
  elseif(kind STREQUAL "static")
    string(JSON n LENGTH "${json}" policy static_layers)
    set(sets "")
    if(n GREATER 0)
      math(EXPR last_index "${n} - 1")
      foreach(i RANGE ${last_index})
        string(JSON l GET "${json}" policy static_layers ${i})
        string(APPEND sets "    m.insert(${l});\n")
      endforeach()
    endif()
    set(skip_decl "struct Skip {
  static constexpr skipllm::LayerMask layers = [] {
    skipllm::LayerMask m;
${sets}    return m;
  }();
  SKIPLLM_HOST_DEVICE constexpr bool should_skip(skipllm::SkipState& s, skipllm::LayerContext c) const noexcept {
    return skipllm::policy::StaticMask{layers}.should_skip(s, c);
  }
};")
  elseif(kind STREQUAL "random_window")
    _skipllm_json_get(wl "${json}" policy random_window length)
    _skipllm_json_get(wf "${json}" policy random_window first)
    _skipllm_json_get(wla "${json}" policy random_window last)
    _skipllm_json_get(ws "${json}" policy random_window seed)
    _skipllm_float(wlf "${wl}")
    if(wf STREQUAL "")
      set(wf 0)
    endif()
    if(wla STREQUAL "")
      set(wla "1 << 30")
    endif()
    if(ws STREQUAL "")
      set(ws 0)
    endif()
    set(skip_decl "struct Skip {
  static constexpr skipllm::policy::RandomWindow value{${wlf}, ${wf}, ${wla}, ${ws}u};
  SKIPLLM_HOST_DEVICE constexpr bool should_skip(skipllm::SkipState& s, skipllm::LayerContext c) const noexcept {
    return value.should_skip(s, c);
  }
};")
  else()
    message(FATAL_ERROR "SKIPLLM_BAKED_CONFIG ${arg_CONFIG}: field 'policy.kind' must be greedy, layer_greedy, random_window, static or dense, got '${kind}'")
  endif()

  file(TO_CMAKE_PATH "${arg_CONFIG}" config_path)
  set(content "// Generated by cmake/SkipllmBakedConfig.cmake from
//   ${config_path}
// Do not edit: reconfigure with -DSKIPLLM_BAKED_CONFIG=<file> instead.
#pragma once

#include <skipllm/policy/bundle.hpp>
#include <skipllm/policy/cold_region.hpp>
#include <skipllm/policy/layer_thresholds.hpp>
#include <skipllm/policy/random_window.hpp>
#include <skipllm/policy/sink_warmup.hpp>
#include <skipllm/policy/skip_policy.hpp>

namespace skipllm::baked {

inline constexpr char kConfigFile[] = \"${config_path}\";

${skip_decl}
using Cold = skipllm::policy::FixedColdSet<${cfirst}, ${clast}${cold_layers}>;
using Warm = skipllm::policy::Warmup<${wtokens}, ${wevery}>;

//! The config's policies, every parameter a compile-time constant.
using BakedPolicies = skipllm::Policies<Skip, Cold, Warm, skipllm::policy::Cosine>;

//! The config's engine-level flag: a skip skips the whole layer (the layer-skip baseline).
inline constexpr bool kSkipAttention = ${skip_attention};

}  // namespace skipllm::baked
")
  file(CONFIGURE OUTPUT "${arg_HEADER}" CONTENT "${content}" @ONLY)
endfunction()
