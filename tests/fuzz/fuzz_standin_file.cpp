// libFuzzer target: the stand-in file reader (parse_standin_maps) on arbitrary bytes. A file it
// accepts must write back (standin_bytes) byte for byte, must pass or fail check_fits against its
// own shape as expected, and must widen into runnable maps (StandIns) whose every output is finite
// for a finite input. Any other exception, crash or sanitizer report is a bug.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "format/standin_file.hpp"
#include "fuzz_support.hpp"
#include "model/standin.hpp"

using namespace skipllm::engine;
using skipllm::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  std::span<std::uint8_t const> const bytes(data, size);
  StandInMaps maps;
  try {
    maps = parse_standin_maps(bytes, "fuzz.standin");
  } catch (StandInFileError const&) { return 0; }
  std::vector<std::uint8_t> const written = standin_bytes(maps);
  require(written.size() == size && std::equal(written.begin(), written.end(), data),
          "an accepted stand-in file does not write back unchanged");
  check_fits(maps, maps.hidden, maps.layers, "fuzz.standin");  // its own shape always fits
  bool refused = false;
  try {
    check_fits(maps, maps.hidden + 1, maps.layers, "fuzz.standin");
  } catch (StandInFileError const&) { refused = true; }
  require(refused, "check_fits accepted another hidden size");

  if (maps.hidden > 512) return 0;  // widening is linear in the file; keep each input fast
  StandIns const standins(maps);
  std::vector<float> n(static_cast<std::size_t>(maps.hidden), 0.5f), g(n.size()), scratch(n.size());
  for (StandInMap const& m : maps.maps) {
    standins.apply(m.layer, n.data(), g.data(), scratch.data());
    for (float const v : g) require(!std::isnan(v), "a stand-in of finite values gave NaN on a finite input");
  }
  return 0;
}
