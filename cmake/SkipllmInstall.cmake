# Install the headers and a CMake package so that find_package(skipllm CONFIG) works.
include_guard(GLOBAL)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/skipllm" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(TARGETS skipllm EXPORT skipllmTargets)
install(EXPORT skipllmTargets NAMESPACE skipllm:: DESTINATION "${CMAKE_INSTALL_LIBDIR}/cmake/skipllm")

configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/skipllmConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/skipllmConfig.cmake"
  INSTALL_DESTINATION "${CMAKE_INSTALL_LIBDIR}/cmake/skipllm")
# Header-only and architecture-independent.
write_basic_package_version_file("${PROJECT_BINARY_DIR}/skipllmConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
# The config baker (skipllm_bake_policy_config) comes with the package: skipllmConfig.cmake includes it.
install(FILES "${PROJECT_BINARY_DIR}/skipllmConfig.cmake" "${PROJECT_BINARY_DIR}/skipllmConfigVersion.cmake"
              "${PROJECT_SOURCE_DIR}/cmake/SkipllmBakedConfig.cmake"
  DESTINATION "${CMAKE_INSTALL_LIBDIR}/cmake/skipllm")
