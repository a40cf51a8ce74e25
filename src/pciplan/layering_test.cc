// Holds the include arrows of the pipeline (STYLE.md section 2): base <- domain, model <-
// topology <- check, plan <- emit <- edit <- run <- cli and capi; domain and model never include
// each other; no stage includes qmp or cli.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>

namespace {

namespace fs = std::filesystem;

TEST(Layering, IncludesFollowThePipeline) {
  const std::map<std::string, std::set<std::string>> allowed = {
      {"base", {"base"}},
      {"domain", {"base", "domain"}},
      {"model", {"base", "model"}},
      {"topology", {"base", "domain", "model", "topology"}},
      {"check", {"base", "domain", "model", "topology", "check"}},
      {"plan", {"base", "domain", "model", "topology", "check", "plan"}},
      {"emit", {"base", "domain", "model", "topology", "check", "plan", "emit"}},
      {"edit", {"base", "domain", "model", "topology", "check", "plan", "emit", "edit"}},
      {"run", {"base", "domain", "model", "topology", "check", "plan", "emit", "edit", "run"}},
  };
  const std::regex include("#include \"pciplan/([a-z]+)/");
  int files = 0;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(PCIPLAN_SOURCE_DIR) / "src" / "pciplan")) {
    if (!e.is_regular_file()) continue;
    std::string stage = e.path().parent_path().filename().string();
    auto rule = allowed.find(stage);
    if (rule == allowed.end()) continue;
    std::string name = e.path().filename().string();
    if (name.size() > 8 && name.substr(name.size() - 8) == "_test.cc") continue;
    ++files;
    std::ifstream in(e.path());
    for (std::string line; std::getline(in, line);) {
      std::smatch m;
      if (!std::regex_search(line, m, include)) continue;
      EXPECT_TRUE(rule->second.count(m[1].str()))
          << e.path().string() << " (" << stage << ") includes " << m[1].str();
    }
  }
  EXPECT_GT(files, 10);
}

}  // namespace
