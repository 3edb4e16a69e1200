// skipllm_probe: greedy decoding through llama.cpp's public API (llama.h only), recording the
// generated tokens and every step's full logits, so that two llama.cpp builds (plain, patched)
// and skipllm's reference engine can be compared on identical inputs.
//
//   skipllm_probe -m MODEL -o OUTDIR [-n STEPS] [-t THREADS] (-p TEXT | --tokens ID,ID,...)...
//
// Each prompt runs in a fresh llama_context (a fresh KV cache and, in the patched build, a fresh
// skip state): the prompt as one batch (prefill), then STEPS calls of llama_decode with one token
// each, the token being the argmax of the previous logits (ties: the lowest id). The logits of
// the prefill's last position and of every step are kept: STEPS + 1 rows of n_vocab floats.
// Text prompts are tokenized by llama.cpp without a chat template, with BOS when the model's
// vocabulary asks for it, control tokens written in the text recognised as such.
//
// OUTDIR/index.json (schema skipllm.llama_probe/1) lists, per prompt: the text (or null), the
// prompt token ids, the generated ids (STEPS + 1: the argmax of every logits row), the generated
// text and each generated token's bytes (hex), and the file of its logits, OUTDIR/prompt_<i>.f32
// (rows x n_vocab, native float32).
// Decoding does not stop at an end-of-generation token: every prompt gets exactly STEPS steps.
#include "llama.h"

#include <sys/stat.h>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Prompt {
  bool is_text = true;
  std::string text;
  std::vector<llama_token> tokens;
};

struct Options {
  std::string model;
  std::string out_dir;
  int steps = 32;
  int threads = 0;
  bool verbose = false;
  std::vector<Prompt> prompts;
};

[[noreturn]] void fail(std::string const& message) {
  std::fprintf(stderr, "skipllm_probe: error: %s\n", message.c_str());
  std::exit(1);
}

void usage(FILE* out) {
  std::fprintf(out,
               "usage: skipllm_probe -m MODEL -o OUTDIR [-n STEPS] [-t THREADS] [-v] (-p TEXT | --tokens "
               "ID,ID,...)...\n"
               "  -n STEPS   one-token decode steps after the prefill (default 32)\n"
               "  -t N       threads (default: llama.cpp's default)\n"
               "  -p TEXT    a prompt, tokenized by llama.cpp (no chat template; BOS as the model asks)\n"
               "  --tokens   a prompt given as token ids, used as they are\n"
               "  -v         llama.cpp's log on stderr\n");
}

int parse_int(std::string const& flag, std::string const& value, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  long const v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno != 0 || v < lo || v > hi) {
    fail(flag + " needs an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" + value + "'");
  }
  return static_cast<int>(v);
}

std::vector<llama_token> parse_tokens(std::string const& list) {
  std::vector<llama_token> tokens;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) tokens.push_back(parse_int("--tokens", item, 0, INT32_MAX));
  if (tokens.empty()) fail("--tokens needs at least one id");
  return tokens;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string const arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail("option " + arg + " needs a value");
      return argv[++i];
    };
    if (arg == "-m") {
      o.model = value();
    } else if (arg == "-o") {
      o.out_dir = value();
    } else if (arg == "-n") {
      o.steps = parse_int(arg, value(), 1, 100000);
    } else if (arg == "-t") {
      o.threads = parse_int(arg, value(), 1, 1024);
    } else if (arg == "-p") {
      o.prompts.push_back({true, value(), {}});
    } else if (arg == "--tokens") {
      o.prompts.push_back({false, "", parse_tokens(value())});
    } else if (arg == "-v") {
      o.verbose = true;
    } else if (arg == "-h" || arg == "--help") {
      usage(stdout);
      std::exit(0);
    } else {
      usage(stderr);
      fail("unknown argument '" + arg + "'");
    }
  }
  if (o.model.empty() || o.out_dir.empty() || o.prompts.empty()) {
    usage(stderr);
    fail("-m, -o and at least one prompt are required");
  }
  return o;
}

// JSON string: the bytes as they are where they form valid UTF-8 (a token may end inside a
// character), U+FFFD for any byte that does not, escapes for quotes and control characters.
std::string json_string(std::string const& s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size();) {
    auto const c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    std::size_t const len = c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
    bool valid = len != 0 && i + len <= s.size();
    for (std::size_t k = 1; valid && k < len; ++k) valid = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (valid && len == 3) {
      auto const c1 = static_cast<unsigned char>(s[i + 1]);
      valid = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);  // overlong, surrogate
    }
    if (valid && len == 4) {
      auto const c1 = static_cast<unsigned char>(s[i + 1]);
      valid = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);  // overlong, above U+10FFFF
    }
    if (valid) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out + "\"";
}

std::string json_ids(std::vector<llama_token> const& ids) {
  std::string out = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out + "]";
}

std::vector<llama_token> tokenize(llama_vocab const* vocab, std::string const& text) {
  bool const add_bos = llama_vocab_get_add_bos(vocab);
  int const n = -llama_tokenize(vocab, text.data(), static_cast<std::int32_t>(text.size()), nullptr, 0, add_bos, true);
  std::vector<llama_token> tokens(static_cast<std::size_t>(n));
  if (llama_tokenize(vocab, text.data(), static_cast<std::int32_t>(text.size()), tokens.data(), n, add_bos, true) !=
      n) {
    fail("tokenizing the prompt failed");
  }
  return tokens;
}

std::string piece(llama_vocab const* vocab, llama_token id) {
  char buf[256];
  int const n = llama_token_to_piece(vocab, id, buf, sizeof buf, 0, false);
  if (n < 0) fail("a token piece longer than 256 bytes");
  return std::string(buf, static_cast<std::size_t>(n));
}

std::string detokenize(llama_vocab const* vocab, std::vector<llama_token> const& ids) {
  std::string text;
  for (llama_token id : ids) text += piece(vocab, id);
  return text;
}

// Each token's bytes in hex: exact where a token ends inside a UTF-8 character, so a reader can
// match the tokens against another engine's text byte for byte.
std::string json_pieces_hex(llama_vocab const* vocab, std::vector<llama_token> const& ids) {
  static char const digits[] = "0123456789abcdef";
  std::string out = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    out += i ? ",\"" : "\"";
    for (unsigned char c : piece(vocab, ids[i])) {
      out += digits[c >> 4];
      out += digits[c & 15];
    }
    out += '"';
  }
  return out + "]";
}

llama_token argmax(float const* logits, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return best;
}

void quiet_log(ggml_log_level level, char const* text, void*) {
  if (level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

struct PromptResult {
  std::vector<llama_token> prompt;
  std::vector<llama_token> generated;
  std::string logits_file;
};

PromptResult run_prompt(llama_model* model, Options const& o, Prompt const& p, std::size_t index) {
  llama_vocab const* vocab = llama_model_get_vocab(model);
  int const n_vocab = llama_vocab_n_tokens(vocab);
  PromptResult r;
  r.prompt = p.is_text ? tokenize(vocab, p.text) : p.tokens;
  if (r.prompt.empty()) fail("prompt " + std::to_string(index) + " has no tokens");
  for (llama_token id : r.prompt) {
    if (id >= n_vocab) fail("token id " + std::to_string(id) + " is outside the vocabulary");
  }

  llama_context_params cp = llama_context_default_params();
  auto const needed = static_cast<std::uint32_t>(r.prompt.size()) + static_cast<std::uint32_t>(o.steps) + 1;
  cp.n_ctx = needed;
  // The whole prompt in one batch and one micro-batch: one prefill graph.
  cp.n_batch = cp.n_ubatch = static_cast<std::uint32_t>(r.prompt.size());
  cp.n_seq_max = 1;
  if (o.threads > 0) cp.n_threads = cp.n_threads_batch = o.threads;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) fail("could not create a llama context");

  r.logits_file = "prompt_" + std::to_string(index) + ".f32";
  std::string const path = o.out_dir + "/" + r.logits_file;
  std::ofstream out(path, std::ios::binary);
  if (!out) fail("cannot write " + path);

  std::vector<llama_token> step_input = r.prompt;
  for (int step = 0; step <= o.steps; ++step) {
    llama_batch batch = llama_batch_get_one(step_input.data(), static_cast<std::int32_t>(step_input.size()));
    int const rc = llama_decode(ctx, batch);
    if (rc != 0) fail("llama_decode returned " + std::to_string(rc) + " at step " + std::to_string(step));
    float const* logits = llama_get_logits_ith(ctx, -1);
    if (!logits) fail("no logits at step " + std::to_string(step));
    out.write(reinterpret_cast<char const*>(logits), static_cast<std::streamsize>(sizeof(float) * n_vocab));
    llama_token const next = argmax(logits, n_vocab);
    r.generated.push_back(next);
    step_input.assign(1, next);  // the last row's argmax is recorded, not decoded
  }
  if (!out.flush()) fail("writing " + path + " failed");
  llama_free(ctx);  // the patched build writes its trace and statistics here
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Options const o = parse(argc, argv);
  if (mkdir(o.out_dir.c_str(), 0777) != 0 && errno != EEXIST) fail("cannot create " + o.out_dir);
  if (!o.verbose) llama_log_set(quiet_log, nullptr);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  llama_model* model = llama_model_load_from_file(o.model.c_str(), mp);
  if (!model) fail("could not load " + o.model);
  llama_vocab const* vocab = llama_model_get_vocab(model);

  std::string index = "{\"schema\": \"skipllm.llama_probe/1\", \"model\": " + json_string(o.model) +
                      ", \"n_vocab\": " + std::to_string(llama_vocab_n_tokens(vocab)) +
                      ", \"n_layer\": " + std::to_string(llama_model_n_layer(model)) +
                      ", \"steps\": " + std::to_string(o.steps) + ", \"threads\": " + std::to_string(o.threads) +
                      ",\n \"prompts\": [";
  for (std::size_t i = 0; i < o.prompts.size(); ++i) {
    Prompt const& p = o.prompts[i];
    PromptResult const r = run_prompt(model, o, p, i);
    index += std::string(i ? ",\n  " : "\n  ") + "{\"text\": " + (p.is_text ? json_string(p.text) : "null") +
             ", \"prompt_tokens\": " + json_ids(r.prompt) + ", \"generated\": " + json_ids(r.generated) +
             ", \"generated_text\": " + json_string(detokenize(vocab, r.generated)) +
             ", \"generated_pieces_hex\": " + json_pieces_hex(vocab, r.generated) +
             ", \"logits_file\": " + json_string(r.logits_file) + ", \"rows\": " + std::to_string(r.generated.size()) +
             "}";
  }
  index += "\n ]}\n";
  std::string const path = o.out_dir + "/index.json";
  std::ofstream out(path);
  if (!(out << index) || !out.flush()) fail("cannot write " + path);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
