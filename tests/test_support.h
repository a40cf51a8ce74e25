// Helpers shared by the suite-level tests (conformance, CLI).
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace pciplan::testing {

/// The bytes of a file; empty when it cannot be read.
inline std::string Slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace pciplan::testing
