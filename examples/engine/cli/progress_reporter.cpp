#include "cli/progress_reporter.hpp"

#include <utility>

#include "cli/support.hpp"

namespace skipllm::cli {

using engine::eval::Clock;
using engine::eval::seconds_since;

ProgressReporter::ProgressReporter(std::ostream& err, std::string label, std::string unit, bool bar, bool enabled)
    : err_(err), label_(std::move(label)), unit_(std::move(unit)), bar_(bar), enabled_(enabled), start_(Clock::now()) {}

void ProgressReporter::operator()(std::size_t done, std::size_t total) {
  if (!enabled_ || total == 0) return;
  double const elapsed = seconds_since(start_);
  double const frac = static_cast<double>(done) / static_cast<double>(total);
  std::string const eta = done > 0 && done < total ? ", ETA " + duration(elapsed / frac - elapsed) : "";
  if (bar_) {
    if (done < total && elapsed - last_draw_ < 0.1 && done != 0) return;
    last_draw_ = elapsed;
    int constexpr kWidth = 28;
    int const filled = static_cast<int>(frac * kWidth);
    std::string line = "\r" + label_ + " [" + std::string(static_cast<std::size_t>(filled), '#') +
                       std::string(static_cast<std::size_t>(kWidth - filled), '.') + "] " + std::to_string(done) + "/" +
                       std::to_string(total) + " " + unit_ + ", " + duration(elapsed) + eta;
    if (line.size() < last_width_) line += std::string(last_width_ - line.size(), ' ');
    last_width_ = line.size();
    err_ << line << std::flush;
    drawn_ = true;
    if (done == total) finish();
  } else {
    int const tenth = static_cast<int>(frac * 10 + 1e-9);
    if (tenth <= last_tenth_ || (done < total && elapsed < 1.0)) return;
    last_tenth_ = tenth;
    err_ << "skipllm: " << label_ << ": " << done << "/" << total << " " << unit_ << " (" << fixed(100 * frac, 0)
         << "%), " << duration(elapsed) << eta << "\n"
         << std::flush;
  }
}

void ProgressReporter::finish() {
  if (drawn_) err_ << "\n" << std::flush;
  drawn_ = false;
}

std::string ProgressReporter::duration(double seconds) {
  if (seconds < 60) return fixed(seconds, 1) + " s";
  int const total = static_cast<int>(seconds + 0.5);
  return std::to_string(total / 60) + " min " + std::to_string(total % 60) + " s";
}

}  // namespace skipllm::cli
