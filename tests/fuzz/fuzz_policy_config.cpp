// libFuzzer target: the policy config reader (parse_policy_config) on arbitrary text. A config
// it accepts must write back (policy_config_json) to text that parses to the same config, and
// must either give library policies (make_policies, describe_policies) or be refused for the
// model with PolicyConfigError. Any other exception, crash or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "format/policy_config.hpp"
#include "fuzz_support.hpp"

using namespace skipllm::engine;
using skipllm::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  PolicyConfig config;
  try {
    config = parse_policy_config(skipllm::fuzz::as_text(data, size), "fuzz.json");
  } catch (PolicyConfigError const&) { return 0; }
  std::string const written = policy_config_json(config);
  PolicyConfig reread;
  try {
    reread = parse_policy_config(written, "written");
  } catch (PolicyConfigError const&) {
    require(false, "policy_config_json() wrote a config parse_policy_config() refuses");
  }
  require(policy_config_json(reread) == written, "a written config does not read back unchanged");

  int const layers = config.model_layers > 0 ? config.model_layers : 30;
  try {
    skipllm::policy::ConfigurablePolicies const policies = make_policies(config, layers);
    require(!describe_policies(policies, config.skip_attention).empty(), "describe_policies() is empty");
  } catch (PolicyConfigError const&) {}
  return 0;
}
