// Pieces every `skipllm` subcommand uses: the failure it reports with an exit status, finding
// the model, output files ("-" = stdout), the version string.
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

namespace skipllm::cli {

//! A problem to report with an exit status (the message is complete, without "skipllm: error: ").
struct Failure {
  int status;
  std::string message;
};

//! The model path for -m (or its absence): explicit and $SKIPLLM_MODEL paths must exist; the
//! cached default is downloaded when missing. Throws Failure.
std::filesystem::path find_model(std::optional<std::string> const& explicit_path, std::ostream& err);

//! "major.minor.patch".
std::string version_string();

//! An output opened before the run: a file, "-" for `stdout_stream`, or nothing when not asked for.
class OutputFile {
 public:
  OutputFile(std::optional<std::string> const& name, char const* option, std::ostream& stdout_stream);
  explicit operator bool() const { return stream_ != nullptr; }
  std::ostream& stream() { return *stream_; }
  //! Flushes and closes; throws Failure when anything was not written.
  void finish();

 private:
  char const* option_;
  std::string name_;
  std::unique_ptr<std::ofstream> file_;
  std::ostream* stream_ = nullptr;
};

}  // namespace skipllm::cli
