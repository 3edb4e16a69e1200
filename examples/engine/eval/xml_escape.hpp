// Text for the SVG pictures of eval/ (heatmap, profile_svg): escaped for XML element content and
// attribute values.
#pragma once

#include <string>
#include <string_view>

namespace skipllm::engine::eval {

//! `s` with &, <, > and " escaped; control characters other than tab and newline, which XML 1.0
//! does not allow, are dropped.
inline std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char const c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default:
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n') out += c;
    }
  }
  return out;
}

}  // namespace skipllm::engine::eval
