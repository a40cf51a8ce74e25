// Write-back: the input document with the plan applied. Edits are spliced into the original
// text, so every byte the plan did not change (comments, whitespace, quoting, entities, foreign
// namespaces, attribute order) comes out exactly as it went in.
#pragma once

#include <string>

#include "pciplan/base/result.h"
#include "pciplan/domain/domain.h"
#include "pciplan/model/machine_model.h"
#include "pciplan/plan/plan.h"

namespace pciplan {

/// The text of `input` with every address, attribute and device the plan added or changed.
/// New devices go where libvirt lists them (`catalog.output_order`, controllers by type and
/// index) and are indented like their siblings.
Result<std::string> WriteDomain(const Domain& input, const Plan& plan, const Catalog& catalog);

/// The XML of one address element: `<address type='pci' domain='0x0000' .../>`.
std::string AddressXml(const Address& address, char quote);

}  // namespace pciplan
