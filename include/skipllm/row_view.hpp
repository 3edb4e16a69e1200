//! @file
//! RowView: a non-owning [rows, cols] row-major view of activations, on host or device.
#pragma once

#include <cstdint>

#include "config.hpp"

namespace skipllm {

//! Rows of `cols` elements, `stride` elements apart. The host hands skipllm its residual
//! stream and FFN output as views; skipllm never allocates or frees them.
template <class T>
struct RowView {
  using element_type = T;

  T* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t stride = 0;  //!< elements between the starts of consecutive rows (>= cols)

  SKIPLLM_HOST_DEVICE constexpr T* row(std::int64_t r) const noexcept { return data + r * stride; }
};

template <class T>
RowView(T*, std::int64_t, std::int64_t, std::int64_t) -> RowView<T>;

namespace detail {
template <class V>
inline constexpr bool is_row_view_v = false;
template <class T>
inline constexpr bool is_row_view_v<RowView<T>> = true;
}  // namespace detail

}  // namespace skipllm
