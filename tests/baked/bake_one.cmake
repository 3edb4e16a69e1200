# cmake -DSOURCE=<skipllm> -DCONFIG=<config.json> -DHEADER=<out.hpp> -P bake_one.cmake
# Bakes one config, as skipllm_bake_policy_config() does at configure time.
cmake_minimum_required(VERSION 3.24)
include("${SOURCE}/cmake/SkipllmBakedConfig.cmake")
skipllm_bake_policy_config(CONFIG "${CONFIG}" HEADER "${HEADER}")
