// Pieces every `skipllm` subcommand uses: the failure it reports with an exit status, finding
// and loading the model, output files ("-" = stdout), the version string, number formatting.
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "format/gguf.hpp"
#include "format/policy_config.hpp"
#include "format/tokenizer.hpp"
#include "model/llama_model.hpp"

namespace skipllm::cli {

//! A problem to report with an exit status (the message is complete, without "skipllm: error: ").
struct Failure {
  int status;
  std::string message;
};

//! Throws std::runtime_error, before any model is read, when `device` ("cpu" or "cuda") cannot
//! run here: "--device cuda: " and why (built without CUDA, no driver, no device, ...).
void require_device(std::string const& device);

//! The model path for -m (or its absence): explicit and $SKIPLLM_MODEL paths must exist; the
//! cached default is downloaded when missing. Throws Failure.
std::filesystem::path find_model(std::optional<std::string> const& explicit_path, std::ostream& err);

//! A GGUF file and the model read from it.
struct LoadedModel {
  explicit LoadedModel(std::filesystem::path const& p) : path(p), file(engine::GgufFile::open(p)), model(file) {}
  std::filesystem::path path;
  engine::GgufFile file;
  engine::LlamaModel model;
};

//! Loads the model at `path`; a file that is no usable model is a usage Failure.
std::unique_ptr<LoadedModel> load_model(std::filesystem::path const& path);

//! The stand-ins the policy config names (model/standin.hpp: attach_standins), attached to the
//! model and the policies; a file that is unreadable, malformed or made for another model is a
//! usage Failure naming `config_option` (the --config path, when there is one).
void attach_standins(engine::PolicyConfig const& config, std::optional<std::string> const& config_option,
                     engine::LlamaModel& model, skipllm::policy::ConfigurablePolicies& policies);

//! The model's tokenizer; one that cannot be read is a usage Failure.
engine::Tokenizer load_tokenizer(LoadedModel const& loaded);

//! The model's general.name, or "" when it has none.
std::string model_name(engine::GgufFile const& file);

//! Whether the model's tokenizer wants a BOS token first (tokenizer.ggml.add_bos_token; false
//! when the key is absent or unreadable).
bool adds_bos_token(engine::GgufFile const& file);

//! "major.minor.patch".
std::string version_string();

//! `value` with `digits` decimals, for the text reports; "n/a" when not finite.
std::string fixed(double value, int digits);
//! `fraction` as a percentage with `digits` decimals ("12.5%"); "n/a" when not finite.
std::string percent(double fraction, int digits = 1);

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
