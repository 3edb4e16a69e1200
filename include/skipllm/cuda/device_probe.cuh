//! @file
//! Whether this process can use a CUDA device, and if not, whether that is an absent GPU (skip
//! GPU work) or a broken one (report it). Tests and engines ask this before touching a device.
//!
//! Why two calls: a machine with no NVIDIA driver and a machine whose driver is too old for the
//! runtime both get cudaErrorInsufficientDriver from cudaGetDeviceCount. cudaDriverGetVersion
//! tells them apart: it reports 0 when no driver is installed.
#pragma once

#include <string>

#include "config.cuh"

namespace skipllm::cuda {

enum class DeviceStatus : unsigned char {
  kUsable,    //!< at least one device, and the runtime can talk to it
  kNoDriver,  //!< no NVIDIA driver installed: nothing to use (skip)
  kNoDevice,  //!< a driver, but no device (skip)
  kUnusable,  //!< a driver, but the runtime cannot use it (too old, mismatched, ...): an error
};

//! The status from what the runtime reported: `driver_version` (cudaDriverGetVersion; 0: none
//! installed), `count_error` and `device_count` (cudaGetDeviceCount). Host logic.
constexpr DeviceStatus classify_device(int driver_version, cudaError_t count_error, int device_count) noexcept {
  if (count_error == cudaSuccess) return device_count > 0 ? DeviceStatus::kUsable : DeviceStatus::kNoDevice;
  if (driver_version == 0) return DeviceStatus::kNoDriver;
  if (count_error == cudaErrorNoDevice) return DeviceStatus::kNoDevice;
  return DeviceStatus::kUnusable;
}

//! A probe's outcome and a sentence saying why.
struct DeviceProbe {
  DeviceStatus status = DeviceStatus::kNoDriver;
  std::string message;
  bool usable() const noexcept { return status == DeviceStatus::kUsable; }
};

//! Asks the runtime (clears the error it may leave behind).
inline DeviceProbe probe_device() {
  int driver = 0;
  if (cudaDriverGetVersion(&driver) != cudaSuccess) driver = 0;
  int count = 0;
  cudaError_t const error = cudaGetDeviceCount(&count);
  (void)cudaGetLastError();
  DeviceProbe p;
  p.status = classify_device(driver, error, count);
  std::string const versions = "driver " + std::to_string(driver) + ", runtime " + std::to_string(CUDART_VERSION);
  switch (p.status) {
    case DeviceStatus::kUsable: p.message = std::to_string(count) + " CUDA device(s) (" + versions + ")"; break;
    case DeviceStatus::kNoDriver: p.message = "no CUDA driver installed"; break;
    case DeviceStatus::kNoDevice: p.message = "no CUDA device (" + versions + ")"; break;
    case DeviceStatus::kUnusable:
      p.message = std::string("a CUDA driver is installed but unusable: ") + cudaGetErrorName(error) + " (" +
                  cudaGetErrorString(error) + "; " + versions + ")";
      break;
  }
  return p;
}

}  // namespace skipllm::cuda
