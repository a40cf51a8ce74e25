// Live changes: the QEMU side of attach --live and detach --live. The new device goes to the
// running QEMU with device_add at its planned bus and address (its placeholder backends first);
// a removal waits for QEMU's DEVICE_DELETED. The caller writes the domain only after success.
#pragma once

#include "pciplan/base/result.h"
#include "pciplan/domain/domain.h"
#include "pciplan/edit/attach.h"
#include "pciplan/model/machine_model.h"
#include "pciplan/plan/plan.h"
#include "pciplan/qmp/qmp_client.h"

namespace pciplan {

/// Hot-plugs the device `edited.device` into the QEMU behind `qmp`. Fails with QEMU's own
/// message when QEMU refuses, or when a backend it needs cannot be added live.
Result<bool> HotplugAttached(QmpClient& qmp, const Edited& edited, const Catalog& catalog,
                             int timeout_ms);

/// Asks the QEMU behind `qmp` to unplug device `index` of the planned `domain`, and waits up to
/// `timeout_ms` for DEVICE_DELETED (the guest may have to agree). Fails with QEMU's message, or
/// when the unplug did not complete in time.
Result<bool> HotUnplug(QmpClient& qmp, const Domain& domain, const Plan& plan, int index,
                       const Catalog& catalog, int timeout_ms);

}  // namespace pciplan
