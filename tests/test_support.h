// Helpers shared by the suite-level tests (conformance, CLI).
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace pciplan::testing {

/// `run` over every item, `width` at a time (each QEMU a test starts shares a busy machine),
/// results in item order.
template <typename Item, typename Run>
auto RunBatched(const std::vector<Item>& items, size_t width, Run run) {
  std::vector<decltype(run(items.front()))> done;
  for (size_t start = 0; start < items.size(); start += width) {
    std::vector<std::future<decltype(run(items.front()))>> running;
    for (size_t i = start; i < std::min(items.size(), start + width); ++i) {
      running.push_back(std::async(std::launch::async, run, items[i]));
    }
    for (auto& f : running) done.push_back(f.get());
  }
  return done;
}

/// The bytes of a file; empty when it cannot be read.
inline std::string Slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

namespace fs = std::filesystem;

struct RunResult {
  std::string out, err;
  int status = -1;
};

/// Starts pciplan in `dir` with `args`, its standard input, output and error on `in`, `out` and
/// `err`; returns its pid.
inline pid_t SpawnPciplan(const fs::path& dir, const std::vector<std::string>& args, int in,
                          int out, int err) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::chdir(dir.c_str()) != 0) _exit(127);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    std::vector<char*> argv;
    std::string bin = PCIPLAN_BINARY;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

/// Runs pciplan in `dir` with `args`, feeding `stdin_file` (if it exists) on standard input.
inline RunResult RunPciplan(const fs::path& dir, const std::vector<std::string>& args,
                            const fs::path& stdin_file) {
  fs::path out_file =
      fs::temp_directory_path() / ("pciplan-cli-" + std::to_string(::getpid()) + ".out");
  fs::path err_file =
      fs::temp_directory_path() / ("pciplan-cli-" + std::to_string(::getpid()) + ".err");
  int in = fs::exists(stdin_file) ? ::open(stdin_file.c_str(), O_RDONLY)
                                  : ::open("/dev/null", O_RDONLY);
  int out = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = SpawnPciplan(dir, args, in, out, err);
  ::close(in);
  ::close(out);
  ::close(err);
  RunResult r;
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  r.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  r.out = Slurp(out_file);
  r.err = Slurp(err_file);
  fs::remove(out_file);
  fs::remove(err_file);
  return r;
}

}  // namespace pciplan::testing
