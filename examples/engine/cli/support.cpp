#include "cli/support.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <system_error>

#include <skipllm/config.hpp>

#include "cli/commands.hpp"
#include "cuda/device.hpp"
#include "format/model_cache.hpp"
#include "model/standin.hpp"

namespace skipllm::cli {

void require_device(std::string const& device) {
  if (device != "cuda") return;
  if (std::optional<std::string> const problem = engine::cuda_device_problem()) {
    throw std::runtime_error("--device cuda: " + *problem);
  }
}

namespace fs = std::filesystem;
namespace eng = skipllm::engine;

fs::path find_model(std::optional<std::string> const& explicit_path, std::ostream& err) {
  eng::ModelEnvironment const env = eng::ModelEnvironment::from_process();
  eng::ModelLocation where;
  try {
    where = eng::locate_model(explicit_path, env);
    if (where.source == eng::ModelSource::cache) return eng::resolve_model(explicit_path, env, err);
  } catch (eng::ModelFetchError const& e) { throw Failure{kExitFetch, e.what()}; }
  std::string const from = where.source == eng::ModelSource::command_line ? "(-m)" : "(from $SKIPLLM_MODEL)";
  std::error_code ec;
  auto const status = fs::status(where.path, ec);
  if (!fs::exists(status)) throw Failure{kExitUsage, "model file not found: " + where.path.string() + " " + from};
  if (fs::is_directory(status)) {
    throw Failure{kExitUsage, "model path is a directory, not a GGUF file: " + where.path.string() + " " + from};
  }
  return where.path;
}

std::unique_ptr<LoadedModel> load_model(fs::path const& path) {
  try {
    return std::make_unique<LoadedModel>(path);
  } catch (std::exception const& e) {
    throw Failure{kExitUsage, "cannot load model " + path.string() + ": " + e.what()};
  }
}

void attach_standins(eng::PolicyConfig const& config, std::optional<std::string> const& config_option,
                     eng::LlamaModel& model, skipllm::policy::ConfigurablePolicies& policies) {
  try {
    eng::attach_standins(config, model, policies);
  } catch (eng::StandInFileError const& e) {
    throw Failure{kExitUsage, (config_option ? "--config " + *config_option + ": " : std::string()) + e.what()};
  }
}

eng::Tokenizer load_tokenizer(LoadedModel const& loaded) {
  try {
    return eng::tokenizer_from_gguf(loaded.file);
  } catch (std::exception const& e) {
    throw Failure{kExitUsage, "cannot load the tokenizer of " + loaded.path.string() + ": " + e.what()};
  }
}

std::string model_name(eng::GgufFile const& file) {
  try {
    if (auto const name = file.find_string("general.name")) return std::string(*name);
  } catch (std::exception const&) {}
  return {};
}

bool adds_bos_token(eng::GgufFile const& file) {
  try {
    return file.find_bool("tokenizer.ggml.add_bos_token").value_or(false);
  } catch (std::exception const&) { return false; }
}

std::string version_string() {
  return std::to_string(SKIPLLM_VERSION_MAJOR) + "." + std::to_string(SKIPLLM_VERSION_MINOR) + "." +
         std::to_string(SKIPLLM_VERSION_PATCH);
}

std::string fixed(double value, int digits) {
  if (!std::isfinite(value)) return "n/a";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", digits, value);
  return buf;
}

std::string percent(double fraction, int digits) {
  return std::isfinite(fraction) ? fixed(100 * fraction, digits) + "%" : "n/a";
}

OutputFile::OutputFile(std::optional<std::string> const& name, char const* option, std::ostream& stdout_stream)
    : option_(option) {
  if (!name) return;
  name_ = *name;
  if (name_ == "-") {
    stream_ = &stdout_stream;
    return;
  }
  file_ = std::make_unique<std::ofstream>(name_, std::ios::binary | std::ios::trunc);
  if (!*file_) {
    throw Failure{kExitUsage,
                  std::string("cannot open ") + option_ + " file " + name_ + " for writing: " + std::strerror(errno)};
  }
  stream_ = file_.get();
}

void OutputFile::finish() {
  stream_->flush();
  if (file_) file_->close();
  if (!*stream_ || (file_ && file_->fail())) {
    throw Failure{kExitRuntime, std::string("writing ") + option_ + " file " + name_ + " failed"};
  }
}

}  // namespace skipllm::cli
