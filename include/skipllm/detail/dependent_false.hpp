//! @file
//! dependent_false_v: false, but only once a template is instantiated, so that a primary
//! template can reject every type its specializations do not cover with its own message.
#pragma once

#include "../config.hpp"

namespace skipllm::detail {

template <class...>
inline constexpr bool dependent_false_v = false;

}  // namespace skipllm::detail
