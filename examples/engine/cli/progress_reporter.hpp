// Progress of a long run on stderr (skipllm eval): a one-line bar with an ETA when stderr is a
// terminal (or --progress), otherwise a line at every further 10%.
#pragma once

#include <cstddef>
#include <ostream>
#include <string>

#include "eval/timing.hpp"

namespace skipllm::cli {

class ProgressReporter {
 public:
  //! `label` names the run ("factoid"), `unit` what is counted ("items"); `bar`: draw the bar;
  //! `enabled` = false prints nothing.
  ProgressReporter(std::ostream& err, std::string label, std::string unit, bool bar, bool enabled);

  //! `done` of `total` units are finished.
  void operator()(std::size_t done, std::size_t total);

  //! Ends the bar's line, if one was drawn.
  void finish();

 private:
  static std::string duration(double seconds);

  std::ostream& err_;
  std::string label_, unit_;
  bool bar_, enabled_;
  engine::eval::Clock::time_point start_;
  double last_draw_ = -1;
  std::size_t last_width_ = 0;
  int last_tenth_ = 0;
  bool drawn_ = false;
};

}  // namespace skipllm::cli
