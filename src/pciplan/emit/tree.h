// The planned PCI topology for people: a text tree like `lspci -tv`, but with libvirt's
// controller indexes and models and every free slot marked hot-pluggable or not (`pciplan
// tree`), and the same as a Graphviz graph (`--dot`, `--svg`). Pure: no I/O.
#pragma once

#include <string>

#include "pciplan/model/machine_model.h"
#include "pciplan/plan/plan.h"

namespace pciplan {

/// Every PCI bus from the root: each device at its slot and function ("BB:SS.F", BB the bus's
/// controller index as libvirt numbers it), each controller followed by the bus it makes, the
/// machine's reserved functions, and the free slots (ranges), each hot-pluggable or not.
std::string RenderTreeText(const Plan& plan, const Catalog& catalog);

/// The same as a Graphviz digraph: buses as boxes, devices as nodes, free slots as dashed
/// nodes (green when hot-pluggable), and the buses behind an expander bus of a guest NUMA node
/// in a cluster per node.
std::string RenderTreeDot(const Plan& plan, const Catalog& catalog);

}  // namespace pciplan
