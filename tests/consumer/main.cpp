// The smallest useful downstream program: a host with a fixed FFN, the paper's policies.
#include "engine.hpp"

int main() {
  Engine engine;
  skipllm::DecoderStack<Engine> stack(engine);
  return decode_and_report(stack);
}
