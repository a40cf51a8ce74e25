#!/usr/bin/env bash
# What `cmake --install` and `cpack -G DEB` deliver, used as a user would (CTest: Install.*,
# Package.*, Docs.*). The environment names the build (PCIPLAN_BUILD, PCIPLAN_SOURCE,
# PCIPLAN_PYTHON3, PCIPLAN_VERSION, PCIPLAN_LIBDIR).
#   install_test.sh destdir   install into $PCIPLAN_BUILD/install-test/root (prefix /usr)
#   install_test.sh TEST      one check of that install: PkgConfig CSmoke CMakePackage ManPage
#                             BashCompletion Python Program
#   install_test.sh deb       cpack -G DEB, dpkg-deb -x, then the program, C and Python on it
#   install_test.sh docs      the man page and the completion name every option of --help
set -euo pipefail
build=$PCIPLAN_BUILD source=$PCIPLAN_SOURCE
root=$build/install-test/root
example=$source/examples/q35-server.xml
expected=$("$build/pciplan" plan "$example")

fail() { echo "FAIL: $*" >&2; exit 1; }

# The C smoke program built through pkg-config against the tree at $1, run on the example.
c_smoke() {
  local tree=$1 work=$2 flags
  flags=$(PKG_CONFIG_PATH="$tree/usr/$PCIPLAN_LIBDIR/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$tree" \
            pkg-config --cflags --libs pciplan)
  # shellcheck disable=SC2086  # the flags are words
  cc -std=c99 -Wall -Wextra -Werror -o "$work/smoke" "$source/tests/install/smoke.c" $flags
  [ "$(LD_LIBRARY_PATH="$tree/usr/$PCIPLAN_LIBDIR" "$work/smoke" "$example")" == "$expected" ] ||
    fail "the C smoke program against $tree does not plan the example as the program does"
}

# The Python module of the tree at $1, with no hint where the library is: it finds the one
# installed beside it.
python_smoke() {
  local tree=$1 got
  got=$(env -u PCIPLAN_LIBRARY PYTHONPATH="$tree/usr/lib/python3/dist-packages" \
          "$PCIPLAN_PYTHON3" -c "import sys, pciplan; sys.stdout.write(pciplan.plan(open(sys.argv[1]).read()).xml)" "$example")
  [ "$got" == "$expected" ] || fail "the Python module of $tree does not plan the example as the program does"
  env -u PCIPLAN_LIBRARY PYTHONPATH="$tree/usr/lib/python3/dist-packages" "$PCIPLAN_PYTHON3" -c \
    "import pciplan, sys; sys.exit(0 if pciplan.__file__.startswith(sys.argv[1]) else 1)" "$tree" ||
    fail "python3 imported another pciplan module than the one of $tree"
}

# What bash completes for the words after $1 (the completion script), the last being the one
# completed: "pciplan plan --hot" -> "--hotplug-slots".
complete_words_in() {
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _pciplan;
           echo "${COMPREPLY[*]}"' _ "$@"
}

case $1 in
  destdir)
    rm -rf "$build/install-test"
    DESTDIR=$root cmake --install "$build" --prefix /usr >/dev/null
    for f in bin/pciplan "$PCIPLAN_LIBDIR/libpciplan.so" "$PCIPLAN_LIBDIR/libpciplan.so.0" \
             include/pciplan.h "$PCIPLAN_LIBDIR/pkgconfig/pciplan.pc" \
             "$PCIPLAN_LIBDIR/cmake/pciplan/pciplanConfig.cmake" \
             "$PCIPLAN_LIBDIR/cmake/pciplan/pciplanConfigVersion.cmake" \
             "$PCIPLAN_LIBDIR/cmake/pciplan/pciplanTargets.cmake" share/man/man1/pciplan.1 \
             share/bash-completion/completions/pciplan lib/python3/dist-packages/pciplan/__init__.py; do
      [ -e "$root/usr/$f" ] || fail "not installed: /usr/$f"
    done
    echo "installed into $root"
    ;;
  PkgConfig)
    export PKG_CONFIG_PATH=$root/usr/$PCIPLAN_LIBDIR/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root
    [ "$(pkg-config --modversion pciplan)" == "$PCIPLAN_VERSION" ] || fail "pkg-config --modversion"
    got=$(pkg-config --cflags --libs pciplan | xargs)
    want="-I$root/usr/include -L$root/usr/$PCIPLAN_LIBDIR -lpciplan"
    [ "$got" == "$want" ] || fail "pkg-config --cflags --libs pciplan: '$got', want '$want'"
    echo "$got"
    ;;
  CSmoke)
    work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
    c_smoke "$root" "$work"
    echo "the C smoke program plans the example"
    ;;
  CMakePackage)
    work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
    cmake -S "$source/tests/install/consumer" -B "$work" -DCMAKE_PREFIX_PATH="$root/usr" >/dev/null
    cmake --build "$work" >/dev/null
    [ "$(LD_LIBRARY_PATH="$root/usr/$PCIPLAN_LIBDIR" "$work/smoke" "$example")" == "$expected" ] ||
      fail "the program built with find_package(pciplan) does not plan the example"
    grep -q "pciplan_DIR:PATH=$root/usr/$PCIPLAN_LIBDIR/cmake/pciplan" "$work/CMakeCache.txt" ||
      fail "find_package(pciplan) found another package"
    echo "find_package(pciplan) and pciplan::pciplan work"
    ;;
  ManPage)
    page=$(MANWIDTH=100 man -l "$root/usr/share/man/man1/pciplan.1" 2>&1)
    for c in plan check qemu-args caps tree verify attach detach; do
      grep -q "^       $c" <<<"$page" || fail "the man page has no section for '$c'"
    done
    grep -q "EXIT STATUS" <<<"$page" && grep -q "EXAMPLES" <<<"$page" || fail "man page sections"
    warnings=$(MANWIDTH=100 man --warnings -l "$root/usr/share/man/man1/pciplan.1" 2>&1 >/dev/null)
    [ -z "$warnings" ] || fail "man warns: $warnings"
    echo "man -l renders pciplan(1): $(wc -l <<<"$page") lines"
    ;;
  BashCompletion)
    complete_words() { complete_words_in "$root/usr/share/bash-completion/completions/pciplan" "$@"; }
    [ "$(complete_words pciplan q)" == "qemu-args" ] || fail "pciplan q<TAB>"
    [ "$(complete_words pciplan plan --hot)" == "--hotplug-slots" ] || fail "plan --hot<TAB>"
    [ "$(complete_words pciplan attach --po)" == "--policy-file --policy" ] || fail "attach --po<TAB>"
    [ "$(complete_words pciplan plan --policy i)" == "integrated" ] || fail "--policy i<TAB>"
    [ "$(complete_words pciplan detach --pr)" == "--prune" ] || fail "detach --pr<TAB>"
    echo "bash completes commands, options and their values"
    ;;
  Python)
    python_smoke "$root"
    echo "python3 -c 'import pciplan' plans the example"
    ;;
  Program)
    [ "$("$root/usr/bin/pciplan" --version)" == "$("$build/pciplan" --version)" ] ||
      fail "the installed pciplan --version"
    [ "$("$root/usr/bin/pciplan" plan "$example")" == "$expected" ] || fail "the installed pciplan"
    echo "the installed pciplan runs"
    ;;
  deb)
    work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
    (cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/out" >/dev/null)
    deb=$(ls "$work"/out/pciplan_*.deb)
    depends=$(dpkg-deb -f "$deb" Depends)
    for d in libstdc++6 libc6; do
      grep -q "$d" <<<"$depends" || fail "the package does not depend on $d: $depends"
    done
    dpkg-deb -x "$deb" "$work/root"
    # Every shared library a packaged program or library needs comes from a Depends (pugixml
    # and fmt are linked in when the CLI is static, PCIPLAN_STATIC_CLI).
    for f in "$work"/root/usr/bin/pciplan "$work"/root/usr/lib/*/libpciplan.so.*.*; do
      for needed in $(objdump -p "$f" | awk '/NEEDED/ {print $2}'); do
        case $needed in
          libc.so.* | libm.so.* | ld-linux*) pkg=libc6 ;;
          libstdc++.so.*) pkg=libstdc++6 ;;
          libgcc_s.so.*) pkg=libgcc-s1 ;;
          libpugixml.so.*) pkg=libpugixml ;;
          libfmt.so.*) pkg=libfmt ;;
          *) fail "$(basename "$f") needs $needed, which no check here maps to a package" ;;
        esac
        grep -q "$pkg" <<<"$depends" || fail "$(basename "$f") needs $needed; Depends: $depends"
      done
    done
    "$work/root/usr/bin/pciplan" --version | grep -q "$PCIPLAN_VERSION" || fail "pciplan --version"
    c_smoke "$work/root" "$work"
    python_smoke "$work/root"
    echo "$(basename "$deb"): Depends: $depends; pciplan --version, the C and the Python smoke tests run from it"
    ;;
  docs)
    status=0 checked=0
    # Every command the program's help lists ("Subcommands:" then "  NAME  description").
    commands=$("$build/pciplan" --help | sed -n '/^Subcommands:/,$p' | grep -oE '^  [a-z][a-z-]*' |
                 tr -d ' ')
    [ -n "$commands" ] || fail "pciplan --help lists no command"
    for c in $commands; do
      grep -q "^\*$c\*" "$source/doc/pciplan.1.scd" ||
        { echo "pciplan(1) has no entry for the command $c" >&2; status=1; }
      completed=$(complete_words_in "$source/doc/bash-completion/pciplan" pciplan "$c")
      grep -qw -- "$c" <<<"$completed" ||
        { echo "the bash completion does not offer the command $c" >&2; status=1; }
    done
    for c in $commands; do
      # The options of the help's option lines: "  -o,--output TEXT  ...", "  --live  ...".
      opts=$("$build/pciplan" "$c" --help | grep -oE '^  (-[a-zA-Z],)?--[a-z][a-z-]*' |
               tr ',' '\n' | tr -d ' ' | sort -u)
      for o in $opts; do
        [ "$o" == "-h" ] && continue
        grep -qE -- "(\\*|, )$o(\\*|[ ,])" "$source/doc/pciplan.1.scd" ||
          { echo "pciplan(1) lacks $c $o" >&2; status=1; }
        completed=$(complete_words_in "$source/doc/bash-completion/pciplan" pciplan "$c" "$o")
        grep -qw -- "$o" <<<"$completed" ||
          { echo "the bash completion does not offer $c $o" >&2; status=1; }
        checked=$((checked + 1))
      done
    done
    echo "$checked options of --help checked in pciplan(1) and the bash completion"
    exit $status
    ;;
  *) fail "unknown test $1" ;;
esac
