// A downstream program with a policy config baked into compile-time policy types by the
// package's skipllm_bake_policy_config() (CMakeLists.txt): every threshold a constant.
#include <cstdio>

#include <consumer/baked_policies.hpp>
#include <skipllm/policy/describe.hpp>

#include "engine.hpp"

int main() {
  using Policies = skipllm::baked::BakedPolicies;
  static_assert(Policies::valid);
  Engine engine;
  skipllm::DecoderStack<Engine, Policies> stack(engine);
  std::printf("%s: %s\n", skipllm::baked::kConfigFile, skipllm::describe(Policies{}).c_str());
  return decode_and_report(stack);
}
