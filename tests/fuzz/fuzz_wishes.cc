// libFuzzer target 'wishes' (tests/fuzz/fuzz_checks.h says what it checks). A broken invariant
// aborts with its description, so libFuzzer keeps the input.
#include <cstdio>
#include <cstdlib>

#include "fuzz_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::optional<std::string> violation =
      pciplan::fuzz::CheckWishes({reinterpret_cast<const char*>(data), size});
  if (violation) {
    std::fprintf(stderr, "invariant violated: %s\n", violation->c_str());
    std::abort();
  }
  return 0;
}
