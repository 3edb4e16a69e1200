// `--device` of `skipllm generate` and `skipllm eval`: parsed and range-checked, and `cuda`
// refused before any model is read, with the reason, wherever it cannot run: a build without
// CUDA, no driver, no device, an unusable driver (the reason cuda_device_problem() gives, in the
// command's error). On a usable device both commands get past the device check.
#define BOOST_TEST_MODULE engine_cli_device_option
#include <boost/test/unit_test.hpp>

#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/eval_command.hpp"
#include "cli/options.hpp"
#include "cuda/device.hpp"

namespace cli = skipllm::cli;

namespace {

struct Outcome {
  int status = -1;
  std::string out, err;
};

Outcome run(std::vector<std::string> const& args) {
  std::ostringstream out, err;
  Outcome o;
  o.status = cli::run(cli::parse_command_line(args), out, err);
  o.out = out.str();
  o.err = err.str();
  return o;
}

}  // namespace

BOOST_AUTO_TEST_CASE(device_defaults_to_cpu_and_takes_cpu_or_cuda) {
  BOOST_TEST(cli::parse_command_line({"generate", "-p", "x"}).generate.device == "cpu");
  BOOST_TEST(cli::parse_command_line({"generate", "-p", "x", "--device", "cuda"}).generate.device == "cuda");
  BOOST_TEST(cli::parse_command_line({"eval", "--task", "factoid", "--device=cuda"}).eval->device == "cuda");
  BOOST_TEST(cli::parse_command_line({"eval", "--task", "factoid"}).eval->device == "cpu");
  BOOST_CHECK_EXCEPTION(
      cli::parse_command_line({"generate", "-p", "x", "--device", "gpu"}), cli::UsageError,
      [](cli::UsageError const& e) { return std::string(e.what()).find("expected cpu or cuda") != std::string::npos; });
  BOOST_TEST(cli::help_text(cli::Command::generate).find("--device D") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(cuda_is_refused_with_the_reason_before_the_model_is_read) {
  std::vector<std::string> const generate = {"generate", "-m",  "/nonexistent/model.gguf", "-p", "x",
                                             "--device", "cuda"};
  std::vector<std::string> const eval = {"eval",     "--task", "factoid", "-m", "/nonexistent/model.gguf",
                                         "--device", "cuda"};
  std::optional<std::string> const problem = skipllm::engine::cuda_device_problem();
  if (!problem) {
    // A usable device: both commands get past the device and fail on the missing model.
    BOOST_TEST_MESSAGE("--device cuda here: a usable device");
    for (std::vector<std::string> const& args : {generate, eval}) {
      Outcome const o = run(args);
      BOOST_TEST(o.status == 2, args[0] << ": " << o.err);
      BOOST_TEST(o.err.find("does not drive the CUDA engine") == std::string::npos, o.err);
    }
    return;
  }
  BOOST_TEST_MESSAGE("--device cuda here: " << *problem);
  // A model path that does not exist: the device check comes first, so the error is the device's.
  for (std::vector<std::string> const& args : {generate, eval}) {
    Outcome const o = run(args);
    BOOST_TEST(o.status == 1, args[0]);
    BOOST_TEST(o.err.find("skipllm: error: --device cuda: " + *problem) != std::string::npos, o.err);
    BOOST_TEST(o.out.empty());
  }
#ifdef SKIPLLM_TEST_BUILT_WITH_CUDA
  // This build has CUDA: the reason names what is missing.
  bool const names_it = problem->find("no CUDA") != std::string::npos || problem->find("driver") != std::string::npos;
  BOOST_TEST(names_it, *problem);
#else
  BOOST_TEST(problem->find("built without CUDA") != std::string::npos, *problem);
#endif
}
