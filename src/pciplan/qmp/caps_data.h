// `caps --write-data`: the data files (data/*.json shapes) with every fact a QEMU binary told
// caps put in place of what the files said, so that a maintainer gets a new QEMU's facts as data
// and a test can show the bundled data is what the installed QEMU says.
#pragma once

#include <string>
#include <vector>

#include "pciplan/base/result.h"
#include "pciplan/model/machine_model.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/qmp/caps.h"

namespace pciplan {

/// `base` (the data files `catalog` was loaded from) with the facts of `caps` written in:
/// qemu.json's version; per machine family of the binary, its machine aliases
/// (canonical_names), the binary's arch's default machine unless default_for_is_policy, the
/// functions its machine builds in on the root bus (reserved, less the host bridge and the
/// built-in devices' forced places) and its virtio-mmio transports; per controller model probed,
/// the slot range unless slots_are_policy, and whether QEMU takes a hot-plug into it
/// (qemu_hotplug, learned where the family's machine tells: not for an ACPI-only model on a
/// machine without ACPI hot-plug). Every record written to gets "caps: ..." in its source,
/// naming the binary and the fields; every other field and file is the base's. A fact two
/// machines of the binary tell differently is left as the base says. Fails naming the file when
/// a base file is not the JSON the loader reads.
Result<std::vector<DataFile>> CapsDataFiles(const QemuCaps& caps, const Catalog& catalog,
                                            const std::vector<DataFile>& base);

}  // namespace pciplan
