// Props: an element's attributes as "path -> value" ("@type", "model/@type", "target/node"),
// shared by the domain (what a device says) and the model (what a rule matches).
#pragma once

#include <map>
#include <string>

namespace pciplan {

/// "@attr" for an element's own attributes, "child/@attr", "child/grandchild/@attr" and
/// "child/grandchild" (text) below it; "child/" marks that a child exists.
using Props = std::map<std::string, std::string>;

}  // namespace pciplan
