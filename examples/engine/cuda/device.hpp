// Whether `--device cuda` can run on this machine, for the command line. Plain C++: the CUDA
// build implements it in device_probe.cu, a build without CUDA in device_none.cpp.
#pragma once

#include <optional>
#include <string>

namespace skipllm::engine {

//! Why no CUDA device can be used here (built without CUDA, no driver, no device, an unusable
//! driver), as a sentence; nothing when one can.
std::optional<std::string> cuda_device_problem();

}  // namespace skipllm::engine
