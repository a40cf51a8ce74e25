// Replays the committed fuzz corpora (tests/fuzz/corpus/TARGET) through the fuzz targets' checks
// in the ordinary test suite, so every seed and every input a fuzzer once failed on (the
// regression cases) stays checked by every build, with or without clang.
#include <gtest/gtest.h>

#include <filesystem>

#include "fuzz_checks.h"
#include "test_support.h"

namespace pciplan::fuzz {
namespace {

namespace fs = std::filesystem;

int ReplayCorpus(const std::string& target, std::optional<std::string> (*check)(std::string_view)) {
  int inputs = 0;
  for (const auto& e :
       fs::directory_iterator(fs::path(PCIPLAN_TESTS_DIR) / "fuzz" / "corpus" / target)) {
    SCOPED_TRACE(e.path().filename().string());
    std::optional<std::string> violation = check(pciplan::testing::Slurp(e.path()));
    EXPECT_FALSE(violation.has_value()) << *violation;
    ++inputs;
  }
  return inputs;
}

TEST(FuzzCorpus, EveryPlanInputKeepsItsInvariants) {
  EXPECT_GE(ReplayCorpus("plan", CheckPlan), 250);
}

TEST(FuzzCorpus, EveryAttachInputKeepsItsInvariants) {
  EXPECT_GE(ReplayCorpus("attach", CheckAttachDetach), 57);
}

TEST(FuzzCorpus, EveryWishesInputKeepsItsInvariants) {
  EXPECT_GE(ReplayCorpus("wishes", CheckWishes), 132);
}

}  // namespace
}  // namespace pciplan::fuzz
