// expect: skipllm: Host must declare a nested type 'Step'
#include "common.hpp"

struct HostWithoutStep {
  int num_layers() const { return 4; }
};

int main() {
  HostWithoutStep host;
  skipllm::DecoderLayer<HostWithoutStep> layer(host);
  (void)layer;
}
