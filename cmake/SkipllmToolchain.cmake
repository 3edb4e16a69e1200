# Toolchain checks with messages that say what to do, and optional CUDA.
include_guard(GLOBAL)

if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 11)
  message(FATAL_ERROR "skipllm: g++ ${CMAKE_CXX_COMPILER_VERSION} is too old; C++20 concepts and "
                      "library features need g++ >= 11 (set CMAKE_CXX_COMPILER).")
endif()
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 14)
  message(FATAL_ERROR "skipllm: clang ${CMAKE_CXX_COMPILER_VERSION} is too old; need clang >= 14.")
endif()

set(SKIPLLM_HAS_CUDA OFF)
if(NOT SKIPLLM_ENABLE_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # Explicit, never "native": CI has no GPU, and "native" queries one on every nvcc call.
      set(CMAKE_CUDA_ARCHITECTURES 80 90)
    endif()
    enable_language(CUDA)
    if(CMAKE_CUDA_COMPILER_VERSION VERSION_LESS 12.4)
      message(FATAL_ERROR "skipllm: nvcc ${CMAKE_CUDA_COMPILER_VERSION} is too old; CUDA graph "
                          "conditional nodes need CUDA >= 12.4 (or configure with -DSKIPLLM_ENABLE_CUDA=OFF).")
    endif()
    set(SKIPLLM_HAS_CUDA ON)
    find_package(CUDAToolkit REQUIRED)  # CUDA::cublas for the GPU benchmark
    # CMake 3.25 does not know nvcc 13's C++20 flag (CUDA_STANDARD 20 fails), so CUDA targets
    # of this project pass it themselves.
    set(SKIPLLM_CUDA_FLAGS -std=c++20)
    message(STATUS "skipllm: CUDA ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}")
  elseif(SKIPLLM_ENABLE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "skipllm: SKIPLLM_ENABLE_CUDA=ON but no CUDA compiler was found "
                        "(put nvcc on PATH or set CMAKE_CUDA_COMPILER).")
  else()
    message(STATUS "skipllm: no CUDA compiler found; building host-side targets only")
  endif()
endif()
