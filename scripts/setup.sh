#!/usr/bin/env bash
# Installs what pciplan needs to build and test on Debian 12, idempotently (run as root).
# Only packages that are missing are installed; a second run does nothing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libpugixml-dev nlohmann-json3-dev libcli11-dev libfmt-dev
      libgtest-dev libgmock-dev libbenchmark-dev qemu-system-x86 qemu-system-arm python3
      qemu-system-misc  # qemu-system-riscv64, for the riscv64 virt family
      qemu-system-ppc  # qemu-system-ppc64, for the ppc64 pseries family
      clang libclang-rt-14-dev  # clang 14 and its libFuzzer runtime (libclang_rt.fuzzer)
      lld  # links the static CLI with its hot functions side by side (cmake/pciplan-cli.order)
      graphviz  # dot, for pciplan tree --svg
      python3-pytest golang-go  # the tests of the Python and Go bindings
      scdoc man-db  # the man page pciplan(1): written by scdoc, rendered by man in the tests
      dpkg-dev file  # cpack -G DEB: dpkg-shlibdeps finds the package's dependencies
      python3-jsonschema)  # validates the JSON results against schema/ (tests/json)
# Installs the packages named that are not installed yet (root needed only then).
install_missing() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: missing packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
install_missing "${pkgs[@]}"

# verify --guest boots Linux guests (README "verify --guest"): Debian's x86_64 kernel and a
# static busybox are installed as packages; OVMF is UEFI for q35 guests, qemu-efi-aarch64 (an
# all-architecture package) boots virt guests that have expander buses.
install_missing linux-image-amd64 busybox-static ovmf qemu-efi-aarch64
# The aarch64 guest's kernel and busybox come from Debian's arm64 packages, downloaded and
# unpacked into a cache without installing them (a separate apt state: the system's dpkg
# architectures are left alone). verify --guest looks there (data/qemu.json guest/systems).
guest_cache=/var/cache/pciplan/guest/aarch64
if ! ls "$guest_cache"/vmlinuz-* >/dev/null 2>&1 || [ ! -x "$guest_cache/busybox" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: the aarch64 guest kernel is missing from $guest_cache; run as root" >&2
    exit 1
  fi
  apt_dir=/var/cache/pciplan/apt-arm64
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$guest_cache"
  apt_opts=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64
            -o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir"
            -o Dir::State::status=/dev/null -o APT::Sandbox::User=root)
  apt-get "${apt_opts[@]}" update -qq
  # linux-image-arm64 is a metapackage: its first dependency is the versioned image.
  image=$(apt-cache "${apt_opts[@]}" depends linux-image-arm64 | awk '/Depends: linux-image-/ {print $2; exit}')
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get "${apt_opts[@]}" download -qq "$image" busybox-static)
  for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
  cp "$work"/root/boot/vmlinuz-* "$guest_cache/"
  install -m 0755 "$work/root/bin/busybox" "$guest_cache/busybox"
  rm -rf "$work"
  trap - EXIT
fi
