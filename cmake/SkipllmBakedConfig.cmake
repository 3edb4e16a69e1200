# skipllm_bake_policy_config(CONFIG <file.json> HEADER <out.hpp>)
#
# Bakes a policy config file (schema "skipllm.policy" version 1, docs/policy_config.md) into
# compile-time policy types. Installed with the package: after find_package(skipllm) (or
# add_subdirectory / FetchContent) a project can call it and compile the header it writes:
#
#   namespace skipllm::baked {
#     using Skip    = policy::FixedGreedy<tau, span, spans>     (kind greedy)
#                   | a struct holding a constexpr policy::LayerThresholds  (layer_greedy)
#                   | a struct holding a constexpr policy::RandomWindow     (random_window)
#                   | a struct holding a constexpr LayerMask (policy::StaticMask) (static)
#                   | policy::Dense                                          (dense)
#     using Cold    = policy::FixedColdRegions<first, last, layers...>;
#     using Warm    = policy::FixedWarmup<tokens, every>;
#     using BakedPolicies = skipllm::Policies<Skip, Cold, Warm, policy::Cosine>;
#     inline constexpr bool kSkipAttention;   // the engine-level layer-skip flag
#     inline constexpr char kConfigFile[];    // where it came from
#   }
#
# This is the format's CMake reader (CMake's string(JSON), no other tool). It checks a file as
# strictly as the engine's C++ reader and the Python one do: unknown fields, wrong types and
# out-of-range values stop the configure with a message naming the file and the field, e.g.
# "field 'policy.cold.first': missing". The three readers are tested on the same fixture files
# (tests/fixtures/policy_config); only a repeated key, which string(JSON) cannot see, is left to
# the other two.
include_guard(GLOBAL)
# The functions keep the policies of this file (string(JSON), IN_LIST), whoever includes it.
cmake_policy(PUSH)
cmake_policy(VERSION 3.19...3.25)

# A configure error about the field `field` of the file being baked (`_skipllm_config`).
function(_skipllm_config_error field what)
  message(FATAL_ERROR "skipllm_bake_policy_config: ${_skipllm_config}: field '${field}': ${what}")
endfunction()

# The value and JSON type of the field at the keys ARGN: <out> and <out>_type (MISSING, NULL,
# NUMBER, STRING, BOOLEAN, ARRAY or OBJECT). The enclosing objects must have been checked.
function(_skipllm_config_field out json)
  string(JSON type ERROR_VARIABLE err TYPE "${json}" ${ARGN})
  if(err)
    set(${out}_type MISSING PARENT_SCOPE)
    set(${out} "" PARENT_SCOPE)
  else()
    string(JSON value GET "${json}" ${ARGN})
    set(${out}_type ${type} PARENT_SCOPE)
    set(${out} "${value}" PARENT_SCOPE)
  endif()
endfunction()

# Fails unless the field at the keys ARGN is an object whose members are all in `allowed` (a list).
function(_skipllm_config_object json field allowed)
  string(JSON type TYPE "${json}" ${ARGN})
  if(NOT type STREQUAL "OBJECT" AND field STREQUAL "")
    message(FATAL_ERROR "skipllm_bake_policy_config: ${_skipllm_config}: expected an object at the top level")
  elseif(NOT type STREQUAL "OBJECT")
    _skipllm_config_error("${field}" "expected an object")
  endif()
  string(JSON n LENGTH "${json}" ${ARGN})
  if(n GREATER 0)
    math(EXPR last "${n} - 1")
    foreach(i RANGE ${last})
      string(JSON name MEMBER "${json}" ${ARGN} ${i})
      if(NOT name IN_LIST allowed)
        if(field STREQUAL "")
          _skipllm_config_error("${name}" "unknown field")
        else()
          _skipllm_config_error("${field}.${name}" "unknown field")
        endif()
      endif()
    endforeach()
  endif()
endfunction()

# Fails unless `value` (of JSON type `type`) is a number in [lo, hi], and an integer if `integer`.
function(_skipllm_config_number field value type lo hi integer)
  if(NOT type STREQUAL "NUMBER")
    _skipllm_config_error("${field}" "expected a number")
  endif()
  if(value LESS lo OR value GREATER hi)
    _skipllm_config_error("${field}" "must be between ${lo} and ${hi}, got ${value}")
  endif()
  if(integer AND NOT value MATCHES "^-?[0-9]+(\\.0+)?$")
    _skipllm_config_error("${field}" "expected an integer, got ${value}")
  endif()
endfunction()

# Reads the number at the keys ARGN into <out> if present (otherwise <out> keeps its value),
# checked as by _skipllm_config_number; REQUIRED fields must be present.
function(_skipllm_config_read_number out json field lo hi kind)
  _skipllm_config_field(v "${json}" ${ARGN})
  if(v_type STREQUAL "MISSING")
    if(kind MATCHES "REQUIRED")
      _skipllm_config_error("${field}" "missing")
    endif()
    return()
  endif()
  if(kind MATCHES "INTEGER")
    _skipllm_config_number("${field}" "${v}" "${v_type}" ${lo} ${hi} TRUE)
    string(REGEX REPLACE "\\.0+$" "" v "${v}")
  else()
    _skipllm_config_number("${field}" "${v}" "${v_type}" ${lo} ${hi} FALSE)
  endif()
  set(${out} "${v}" PARENT_SCOPE)
endfunction()

# The integers of the array at the keys ARGN, each in [0, hi], as a list in <out>.
function(_skipllm_config_read_layers out json field hi)
  string(JSON type TYPE "${json}" ${ARGN})
  if(NOT type STREQUAL "ARRAY")
    _skipllm_config_error("${field}" "expected an array")
  endif()
  set(layers "")
  string(JSON n LENGTH "${json}" ${ARGN})
  if(n GREATER 0)
    math(EXPR last "${n} - 1")
    foreach(i RANGE ${last})
      set(l "")
      _skipllm_config_read_number(l "${json}" "${field}[${i}]" 0 ${hi} INTEGER ${ARGN} ${i})
      list(APPEND layers ${l})
    endforeach()
  endif()
  set(${out} "${layers}" PARENT_SCOPE)
endfunction()

# A JSON number as a C++ float literal.
function(_skipllm_float out value)
  if(value MATCHES "[.eE]")
    set(${out} "${value}f" PARENT_SCOPE)
  else()
    set(${out} "${value}.0f" PARENT_SCOPE)
  endif()
endfunction()

function(skipllm_bake_policy_config)
  cmake_parse_arguments(arg "" "CONFIG;HEADER" "" ${ARGN})
  if(NOT arg_CONFIG OR NOT arg_HEADER)
    message(FATAL_ERROR "skipllm_bake_policy_config: needs CONFIG <file.json> and HEADER <out.hpp>")
  endif()
  get_filename_component(config "${arg_CONFIG}" ABSOLUTE)
  set(_skipllm_config "${arg_CONFIG}")  # in every message
  if(NOT EXISTS "${config}" OR IS_DIRECTORY "${config}")
    message(FATAL_ERROR "skipllm_bake_policy_config: ${arg_CONFIG} does not exist")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${config}")
  file(READ "${config}" json)
  set(max_layers 256)  # skipllm::LayerMask::kMaxLayers
  math(EXPR max_layer "${max_layers} - 1")

  # ---- the document ----
  string(JSON type ERROR_VARIABLE err TYPE "${json}")
  if(err)
    string(REGEX REPLACE "\n *" " " err "${err}")
    message(FATAL_ERROR "skipllm_bake_policy_config: ${arg_CONFIG}: invalid JSON: ${err}")
  endif()
  _skipllm_config_object("${json}" "" "schema;version;model;produced_by;policy")
  _skipllm_config_field(schema "${json}" schema)
  if(schema_type STREQUAL "MISSING")
    _skipllm_config_error(schema "missing")
  elseif(NOT schema_type STREQUAL "STRING" OR NOT schema STREQUAL "skipllm.policy")
    _skipllm_config_error(schema "expected \"skipllm.policy\", got ${schema}")
  endif()
  set(version "")
  _skipllm_config_read_number(version "${json}" version 0 1000000 "INTEGER;REQUIRED" version)
  if(NOT version EQUAL 1)
    _skipllm_config_error(version "this skipllm reads version 1, got ${version}")
  endif()
  _skipllm_config_field(model "${json}" model)
  if(NOT model_type STREQUAL "MISSING")
    _skipllm_config_object("${json}" model "name;layers;file" model)
    foreach(key name file)
      _skipllm_config_field(v "${json}" model ${key})
      if(NOT v_type MATCHES "^(MISSING|STRING)$")
        _skipllm_config_error("model.${key}" "expected a string")
      endif()
    endforeach()
    _skipllm_config_read_number(unused "${json}" model.layers 0 ${max_layers} INTEGER model layers)
  endif()
  _skipllm_config_field(produced_by "${json}" produced_by)
  if(NOT produced_by_type STREQUAL "MISSING")
    set(texts tool command date data notes)
    set(numbers target_skip achieved_skip perplexity_dense perplexity)
    _skipllm_config_object("${json}" produced_by "${texts};${numbers}" produced_by)
    foreach(key IN LISTS texts)
      _skipllm_config_field(v "${json}" produced_by ${key})
      if(NOT v_type MATCHES "^(MISSING|STRING)$")
        _skipllm_config_error("produced_by.${key}" "expected a string")
      endif()
    endforeach()
    foreach(key IN LISTS numbers)
      _skipllm_config_read_number(unused "${json}" produced_by.${key} 0 1e30 REAL produced_by ${key})
    endforeach()
  endif()

  # ---- the policy (defaults: those of the C++ reader's PolicyConfig) ----
  _skipllm_config_field(policy "${json}" policy)
  if(policy_type STREQUAL "MISSING")
    _skipllm_config_error(policy "missing")
  endif()
  _skipllm_config_object("${json}" policy
    "kind;threshold;layer_thresholds;span;spans_per_token;warmup;cold;random_window;static_layers;skip_attention;metric"
    policy)
  _skipllm_config_field(kind "${json}" policy kind)
  if(kind_type STREQUAL "MISSING")
    _skipllm_config_error(policy.kind "missing")
  elseif(NOT kind_type STREQUAL "STRING")
    _skipllm_config_error(policy.kind "expected a string")
  elseif(NOT kind MATCHES "^(greedy|layer_greedy|random_window|static|dense)$")
    _skipllm_config_error(policy.kind "expected greedy, layer_greedy, random_window, static or dense, got \"${kind}\"")
  endif()

  set(threshold 0.95)
  if(kind STREQUAL "greedy")
    _skipllm_config_read_number(threshold "${json}" policy.threshold -1 1 "REAL;REQUIRED" policy threshold)
  else()
    _skipllm_config_read_number(threshold "${json}" policy.threshold -1 1 REAL policy threshold)
  endif()

  _skipllm_config_field(lt "${json}" policy layer_thresholds)
  set(layer_thresholds "")
  if(lt_type STREQUAL "MISSING")
    if(kind STREQUAL "layer_greedy")
      _skipllm_config_error(policy.layer_thresholds "missing (required for kind layer_greedy)")
    endif()
  else()
    if(NOT lt_type STREQUAL "ARRAY")
      _skipllm_config_error(policy.layer_thresholds "expected an array")
    endif()
    string(JSON n LENGTH "${json}" policy layer_thresholds)
    if(n LESS 1 OR n GREATER max_layers)
      _skipllm_config_error(policy.layer_thresholds "expected 1 to ${max_layers} entries")
    endif()
    math(EXPR last "${n} - 1")
    foreach(i RANGE ${last})
      _skipllm_config_field(t "${json}" policy layer_thresholds ${i})
      if(t_type STREQUAL "NULL")
        list(APPEND layer_thresholds null)
      else()
        _skipllm_config_number("policy.layer_thresholds[${i}]" "${t}" "${t_type}" -1 1 FALSE)
        list(APPEND layer_thresholds "${t}")
      endif()
    endforeach()
  endif()

  set(span 8)
  _skipllm_config_field(s "${json}" policy span)
  if(s_type STREQUAL "STRING")
    if(NOT s STREQUAL "all")
      _skipllm_config_error(policy.span "expected an integer >= 1 or \"all\", got \"${s}\"")
    endif()
    set(span "skipllm::policy::kToColdRegion")
  else()
    _skipllm_config_read_number(span "${json}" policy.span 1 100000 INTEGER policy span)
  endif()
  set(spans 1)
  _skipllm_config_read_number(spans "${json}" policy.spans_per_token 0 1000 INTEGER policy spans_per_token)

  set(wtokens 16)
  set(wevery 6)
  _skipllm_config_field(w "${json}" policy warmup)
  if(NOT w_type STREQUAL "MISSING")
    _skipllm_config_object("${json}" policy.warmup "tokens;every" policy warmup)
    _skipllm_config_read_number(wtokens "${json}" policy.warmup.tokens 0 1000000 "INTEGER;REQUIRED" policy warmup tokens)
    _skipllm_config_read_number(wevery "${json}" policy.warmup.every 0 1000000 "INTEGER;REQUIRED" policy warmup every)
  endif()

  set(cfirst 5)
  set(clast 5)
  set(cold_layers "")
  _skipllm_config_field(c "${json}" policy cold)
  if(NOT c_type STREQUAL "MISSING")
    _skipllm_config_object("${json}" policy.cold "first;last;layers" policy cold)
    _skipllm_config_read_number(cfirst "${json}" policy.cold.first 0 ${max_layers} "INTEGER;REQUIRED" policy cold first)
    _skipllm_config_read_number(clast "${json}" policy.cold.last 0 ${max_layers} "INTEGER;REQUIRED" policy cold last)
    _skipllm_config_field(l "${json}" policy cold layers)
    if(NOT l_type STREQUAL "MISSING")
      _skipllm_config_read_layers(cold_layers "${json}" policy.cold.layers ${max_layer} policy cold layers)
    endif()
  endif()

  _skipllm_config_field(rw "${json}" policy random_window)
  if(rw_type STREQUAL "MISSING")
    if(kind STREQUAL "random_window")
      _skipllm_config_error(policy.random_window "missing (required for kind random_window)")
    endif()
  else()
    _skipllm_config_object("${json}" policy.random_window "length;first;last;seed" policy random_window)
    set(wfirst 0)
    set(wlast "1 << 30")
    set(wseed 0)
    _skipllm_config_read_number(wlength "${json}" policy.random_window.length 0 ${max_layers} "REAL;REQUIRED"
                                policy random_window length)
    _skipllm_config_read_number(wfirst "${json}" policy.random_window.first 0 ${max_layers} INTEGER policy random_window first)
    _skipllm_config_read_number(wlast "${json}" policy.random_window.last 0 ${max_layers} INTEGER policy random_window last)
    _skipllm_config_read_number(wseed "${json}" policy.random_window.seed 0 4294967295 INTEGER policy random_window seed)
    if(NOT wlast STREQUAL "1 << 30" AND wfirst GREATER wlast)
      _skipllm_config_error(policy.random_window.first "must not exceed 'last'")
    endif()
  endif()

  set(static_layers "")
  _skipllm_config_field(sl "${json}" policy static_layers)
  if(sl_type STREQUAL "MISSING")
    if(kind STREQUAL "static")
      _skipllm_config_error(policy.static_layers "missing (required for kind static)")
    endif()
  else()
    _skipllm_config_read_layers(static_layers "${json}" policy.static_layers ${max_layer} policy static_layers)
  endif()

  set(skip_attention false)
  _skipllm_config_field(sa "${json}" policy skip_attention)
  if(sa_type STREQUAL "BOOLEAN")
    if(sa)
      set(skip_attention true)
    endif()
  elseif(NOT sa_type STREQUAL "MISSING")
    _skipllm_config_error(policy.skip_attention "expected true or false")
  endif()

  _skipllm_config_field(metric "${json}" policy metric)
  if(metric_type STREQUAL "STRING")
    if(NOT metric STREQUAL "cosine")
      _skipllm_config_error(policy.metric "only \"cosine\" is available at runtime, got \"${metric}\"")
    endif()
  elseif(NOT metric_type STREQUAL "MISSING")
    _skipllm_config_error(policy.metric "expected a string")
  endif()

  # ---- the header ----
  set(cold_args "")
  foreach(l IN LISTS cold_layers)
    string(APPEND cold_args ", ${l}")
  endforeach()
  if(kind STREQUAL "greedy")
    _skipllm_float(tau "${threshold}")
    set(skip_decl "using Skip = skipllm::policy::FixedGreedy<${tau}, ${span}, ${spans}>;")
  elseif(kind STREQUAL "dense")
    set(skip_decl "using Skip = skipllm::policy::Dense;")
  elseif(kind STREQUAL "layer_greedy")
    set(sets "")
    set(i 0)
    foreach(t IN LISTS layer_thresholds)
      if(NOT t STREQUAL "null")
        _skipllm_float(tf "${t}")
        string(APPEND sets "    p.tau[${i}] = ${tf};\n")
      endif()
      math(EXPR i "${i} + 1")
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
    set(sets "")
    foreach(l IN LISTS static_layers)
      string(APPEND sets "    m.insert(${l});\n")
    endforeach()
    set(skip_decl "struct Skip {
  static constexpr skipllm::LayerMask layers = [] {
    skipllm::LayerMask m;
${sets}    return m;
  }();
  SKIPLLM_HOST_DEVICE constexpr bool should_skip(skipllm::SkipState& s, skipllm::LayerContext c) const noexcept {
    return skipllm::policy::StaticMask{layers}.should_skip(s, c);
  }
};")
  else()  # random_window
    _skipllm_float(wlf "${wlength}")
    set(skip_decl "struct Skip {
  static constexpr skipllm::policy::RandomWindow value{${wlf}, ${wfirst}, ${wlast}, ${wseed}u};
  SKIPLLM_HOST_DEVICE constexpr bool should_skip(skipllm::SkipState& s, skipllm::LayerContext c) const noexcept {
    return value.should_skip(s, c);
  }
};")
  endif()

  file(TO_CMAKE_PATH "${config}" config_path)
  set(content "// Generated by skipllm_bake_policy_config() (SkipllmBakedConfig.cmake) from
//   ${config_path}
// Do not edit: change the config and reconfigure.
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
using Cold = skipllm::policy::FixedColdRegions<${cfirst}, ${clast}${cold_args}>;
using Warm = skipllm::policy::FixedWarmup<${wtokens}, ${wevery}>;

//! The config's policies, every parameter a compile-time constant.
using BakedPolicies = skipllm::Policies<Skip, Cold, Warm, skipllm::policy::Cosine>;

//! The config's engine-level flag: a skip skips the whole layer (the layer-skip baseline).
inline constexpr bool kSkipAttention = ${skip_attention};

}  // namespace skipllm::baked
")
  file(CONFIGURE OUTPUT "${arg_HEADER}" CONTENT "${content}" @ONLY)
endfunction()

cmake_policy(POP)
