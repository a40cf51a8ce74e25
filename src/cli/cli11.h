// CLI11, included without <iostream>'s start-up work: the only way the CLI includes CLI11.
//
// With libstdc++ before GCC 13, every translation unit that includes <iostream> holds a static
// std::ios_base::Init, whose constructor sets up the standard streams and the locale when the
// program starts: about 44k instructions, 5% of a small `plan`, paid by every run although
// pciplan itself writes through stdio. CLI11 includes <iostream> for the streams App::exit
// prints to. Here the streams are only declared (as <iostream> declares them) and
// StandardStreams() sets them up: call it before anything writes to them.
#pragma once

#include <istream>
#include <ostream>

#if defined(__GLIBCXX__) && defined(_GLIBCXX_RELEASE) && _GLIBCXX_RELEASE < 13 && \
    !defined(_GLIBCXX_IOSTREAM)
#define _GLIBCXX_IOSTREAM 1  // <iostream>'s include guard: CLI11's includes of it add nothing
namespace std _GLIBCXX_VISIBILITY(default) {
_GLIBCXX_BEGIN_NAMESPACE_VERSION
extern istream cin;
extern ostream cout;
extern ostream cerr;
extern ostream clog;
_GLIBCXX_END_NAMESPACE_VERSION
}  // namespace std
#endif

#include <CLI/CLI.hpp>

namespace pciplan::cli {

/// Sets up std::cin, std::cout, std::cerr and std::clog once (flushed when the program ends).
inline void StandardStreams() { static const std::ios_base::Init streams; }

}  // namespace pciplan::cli
