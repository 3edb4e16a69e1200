// Shared by the GPU tests: the "has a device" precondition, an owning device buffer, seeded
// random data, and CPU-side helpers for comparing scores.
#pragma once

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <skipllm/cuda/config.cuh>
#include <skipllm/cuda/device_probe.cuh>
#include <skipllm/numeric.hpp>

namespace test {

// Skips a GPU test case with "no CUDA device: SKIPPED" when there is nothing to run on (no
// driver, or a driver and no device). A driver that is present but unusable (too old for this
// runtime, mismatched) is not a skip: the case runs and fails on its first CUDA call, with the
// reason logged first. (A plain function, not an empty functor: g++ 12 warns about copying an
// empty functor through boost::function.)
inline boost::test_tools::assertion_result has_cuda_device(boost::unit_test::test_unit_id) {
  skipllm::cuda::DeviceProbe const probe = skipllm::cuda::probe_device();
  if (probe.status == skipllm::cuda::DeviceStatus::kNoDriver ||
      probe.status == skipllm::cuda::DeviceStatus::kNoDevice) {
    boost::test_tools::assertion_result r(false);
    r.message() << "no CUDA device: SKIPPED (" << probe.message << ")";
    return r;
  }
  if (!probe.usable()) BOOST_TEST_MESSAGE("skipllm GPU test: " << probe.message << ": FAILING, not skipping");
  return true;
}

inline auto gpu() { return boost::unit_test::precondition(&has_cuda_device); }

#define TEST_CUDA(call) ::skipllm::cuda::check((call), #call)

// An owning device allocation of `n` elements of T (uninitialised).
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t n) : n_(n) {
    if (n_ > 0) TEST_CUDA(cudaMalloc(&p_, n_ * sizeof(T)));
  }
  explicit DeviceBuffer(std::vector<T> const& host) : DeviceBuffer(host.size()) { upload(host); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), n_(o.n_) {
    o.p_ = nullptr;
    o.n_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  DeviceBuffer(DeviceBuffer const&) = delete;
  DeviceBuffer& operator=(DeviceBuffer const&) = delete;
  ~DeviceBuffer() {
    if (p_ != nullptr) (void)cudaFree(p_);
  }

  T* get() const noexcept { return p_; }
  std::size_t size() const noexcept { return n_; }
  void upload(std::vector<T> const& host) {
    BOOST_TEST_REQUIRE(host.size() <= n_);
    TEST_CUDA(cudaMemcpy(p_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
    TEST_CUDA(cudaDeviceSynchronize());  // a pageable upload may return before its DMA lands
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    if (n_ > 0) TEST_CUDA(cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  void zero() {
    if (n_ > 0) TEST_CUDA(cudaMemset(p_, 0, n_ * sizeof(T)));
    TEST_CUDA(cudaDeviceSynchronize());
  }

 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

// Random fp32 values, N(0, sigma), seeded so every run sees the same data.
inline std::vector<float> gaussian(std::size_t n, std::uint32_t seed, float sigma = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = d(gen);
  return v;
}

template <class T>
std::vector<T> to_storage(std::vector<float> const& v) {
  std::vector<T> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = skipllm::from_float<T>(v[i]);
  return out;
}

// Same bits, or both NaN.
template <class T>
bool same_value(T a, T b) {
  float const fa = skipllm::to_float(a);
  float const fb = skipllm::to_float(b);
  if (std::isnan(fa) && std::isnan(fb)) return true;
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

// Scores agree within fp32 reduction error (or are both NaN).
inline bool close_score(float gpu, float cpu, float tolerance) {
  if (std::isnan(gpu) || std::isnan(cpu)) return std::isnan(gpu) && std::isnan(cpu);
  return std::fabs(gpu - cpu) <= tolerance * std::fmax(1.0f, std::fabs(cpu));
}

}  // namespace test
