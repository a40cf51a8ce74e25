// What the fuzz targets check, as plain functions so that the libFuzzer targets (built with
// clang, -DPCIPLAN_FUZZ=ON) and the corpus replay in the ordinary test suite run the same code.
// Each returns the invariant the input broke, or nothing; bad input that is refused is fine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "pciplan/domain/domain.h"

namespace pciplan::fuzz {

/// Target `plan`: bytes -> read -> plan -> write; the written domain must re-plan to the same
/// bytes; qemu-args (shell and JSON) and a verify report of every successful plan render.
std::optional<std::string> CheckPlan(std::string_view bytes);

/// Target `attach`: byte 0 picks a planned base domain and byte 1 the mode (--config or
/// --live, detach with --prune or not); the rest is a device element. A successful attach must
/// move no address, re-plan to itself, and detach again, moving no address either.
std::optional<std::string> CheckAttachDetach(std::string_view bytes);

/// Target `wishes`: byte 0 picks a base domain (pc, q35, virt; unplanned or planned), byte 1
/// whether the rest is a policy file (JSON, odd) or the text of pciplan's metadata element
/// (even). A successful plan under those wishes must keep every address the base had, keep
/// the spare-slot promise, re-plan to the same bytes with the wishes recorded into its metadata
/// (`--write-wishes`), and read the recorded wishes back equal.
std::optional<std::string> CheckWishes(std::string_view bytes);

/// Every device with a user alias, and every controller by type and index, with its address:
/// what "no address moved" compares before and after an edit.
std::map<std::string, Address> AddressesByKey(const Domain& domain);

}  // namespace pciplan::fuzz
