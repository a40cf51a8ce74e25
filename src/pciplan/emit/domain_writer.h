// Write-back: the input document with the plan applied. Edits are spliced into the original
// text, so every byte the plan did not change (comments, whitespace, quoting, entities, foreign
// namespaces, attribute order) comes out exactly as it went in.
#pragma once

#include <string>
#include <vector>

#include "pciplan/base/result.h"
#include "pciplan/domain/domain.h"
#include "pciplan/model/machine_model.h"
#include "pciplan/plan/plan.h"

namespace pciplan {

/// The text of `input` with every address, attribute and device the plan added or changed.
/// New devices go where libvirt lists them (`catalog.output_order`, controllers by type and
/// index) and are indented like their siblings. A self-closing <devices/> is opened once for
/// all of them; a domain without <devices> (libvirt adds its defaults to it) gets one after its
/// last element.
Result<std::string> WriteDomain(const Domain& input, const Plan& plan, const Catalog& catalog);

/// True when WriteDomain would return the input text unchanged: the plan adds no device and
/// changes no property or address of one (a domain planned already). Costs no text scan.
bool WritesNothing(const Domain& input, const Plan& plan);

/// The text of `input` with one more device: `element` is the text `device` was read from
/// (ReadDevice). It goes where libvirt 9.0's attach-device --config puts it (a disk among the
/// disks of its bus by index, a controller after those of its type, another device after the
/// last of its element), re-indented like its neighbours. Fails when there is no <devices>.
/// With `inserted`, also where the new text went: [first, second) of the result is all that is
/// new, every other byte is the input's ({npos, 0} when more than an insertion changed).
Result<std::string> InsertDeviceText(const Domain& input, const Device& device,
                                     const std::string& element, const Catalog& catalog,
                                     std::pair<size_t, size_t>* inserted = nullptr);

/// The text of `input` without the devices at `indexes` (their lines too, when alone on them).
std::string RemoveDevicesText(const Domain& input, const std::vector<size_t>& indexes);

/// The text of `input` with pciplan's metadata element set to `wishes` (replacing the one it
/// has, else added to <metadata>, else in a new <metadata> after <name>/<uuid>/<title>/
/// <description>), indented like its neighbours; every other byte kept.
std::string WithWishesText(const Domain& input, const Wishes& wishes);

/// The XML of one address element: `<address type='pci' domain='0x0000' .../>`.
std::string AddressXml(const Address& address, char quote);

}  // namespace pciplan
