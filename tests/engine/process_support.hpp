// Shared by the engine tests that run the built `skipllm` executable (cli/, eval/): a scratch
// directory, file helpers, and run_cli(), which runs the executable through the shell and
// captures its exit status, stdout and stderr. SKIPLLM_CLI names the executable (set by
// tests/engine/CMakeLists.txt); tests needing it take the cli_available precondition.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "engine_test_support.hpp"

namespace engine_test {

//! A directory for this test process, created on first use and removed at exit.
inline std::filesystem::path const& scratch() {
  static struct Dir {
    std::filesystem::path path;
    Dir() : path(std::filesystem::temp_directory_path() / ("skipllm_test_" + std::to_string(::getpid()))) {
      std::filesystem::remove_all(path);
      std::filesystem::create_directories(path);
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } dir;
  return dir.path;
}

inline std::string read_file(std::filesystem::path const& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_file(std::filesystem::path const& p, std::string const& s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
}

//! `s` as one single-quoted shell word.
inline std::string shell_quote(std::string const& s) {
  std::string q = "'";
  for (char const c : s) {
    if (c == '\'')
      q += "'\\''";
    else
      q += c;
  }
  return q + "'";
}

//! The built executable, when SKIPLLM_CLI names one.
inline std::optional<std::string> cli_path() {
  auto const p = env_path("SKIPLLM_CLI");
  if (!p || !std::filesystem::is_regular_file(*p)) return std::nullopt;
  return p->string();
}

//! Precondition: the executable is there (ctest sets SKIPLLM_CLI).
inline boost::test_tools::assertion_result cli_available(boost::unit_test::test_unit_id) {
  boost::test_tools::assertion_result ok(cli_path().has_value());
  ok.message() << "SKIPLLM_CLI does not name the built skipllm executable: SKIPPED (run through ctest)";
  return ok;
}

//! Precondition: the executable and the real model are there.
inline boost::test_tools::assertion_result cli_and_model_available(boost::unit_test::test_unit_id id) {
  if (!cli_path()) return cli_available(id);
  return model_available(id);
}

struct RunResult {
  int status = -1;  //!< the exit status; -1 when the process did not exit normally
  std::string out, err;
};

//! Runs `env_prefix skipllm args...` (env_prefix: "NAME=value ..." assignments, or empty) with
//! stdin from /dev/null, capturing stdout and stderr through files in scratch().
inline RunResult run_cli(std::vector<std::string> const& args, std::string const& env_prefix = {}) {
  static int counter = 0;
  std::string const n = std::to_string(counter++);
  std::filesystem::path const out = scratch() / ("out" + n + ".txt");
  std::filesystem::path const err = scratch() / ("err" + n + ".txt");
  // (Appended piece by piece: g++ 12 warns falsely on "literal" + std::string&&, GCC bug 105329.)
  std::string cmd = env_prefix;
  cmd.append(" ").append(shell_quote(cli_path().value_or("skipllm")));
  for (auto const& a : args) cmd.append(" ").append(shell_quote(a));
  cmd.append(" </dev/null >").append(shell_quote(out.string())).append(" 2>").append(shell_quote(err.string()));
  int const raw = std::system(cmd.c_str());
  RunResult r;
  r.status = raw != -1 && WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

}  // namespace engine_test
