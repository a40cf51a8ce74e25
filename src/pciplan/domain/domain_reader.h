// Reads libvirt domain XML text into a Domain (first pipeline stage). DOCTYPE declarations are
// refused and entities are never expanded; failures are diagnostics naming the line.
#pragma once

#include <string>
#include <string_view>

#include "pciplan/base/result.h"
#include "pciplan/domain/domain.h"

namespace pciplan {

/// Largest input accepted, in bytes: far above any real domain, small enough to refuse abuse.
inline constexpr size_t kMaxInputBytes = 16 * 1024 * 1024;
/// Most devices accepted in one domain (QEMU allows 256 buses x 32 slots x 8 functions).
inline constexpr size_t kMaxDevices = 65536;

/// Deepest element nesting accepted (the root is depth 1): libxml2's default limit, which
/// libvirt's parser keeps ("Excessive depth in document: 256").
inline constexpr int kMaxXmlDepth = 257;

/// Checks what pugixml would let through but libvirt refuses, before any parsing: bytes that
/// are not UTF-8, a NUL byte, characters XML 1.0 does not allow, elements nested deeper than
/// kMaxXmlDepth. The error names the line and the byte offset. Malformed XML is left to the
/// parser.
Result<bool> CheckXmlText(std::string_view text);

/// Parses `text`. Errors: malformed XML, DOCTYPE, root not <domain>, missing <os><type>,
/// unparseable address numbers, inputs over the limits above, what CheckXmlText refuses.
Result<Domain> ReadDomain(std::string text);

/// Parses one device element (the file `virsh attach-device` takes): its tag, properties and
/// address; `offset` and `line` point into `text`. Errors as ReadDomain, and when the text is
/// not exactly one element or is a whole domain.
Result<Device> ReadDevice(const std::string& text);

/// ReadDomain(text) where `text` is `before.text` with [first, second) inserted and nothing
/// else changed, the insertion holding one device element (and white space) between two device
/// elements of <devices> or after the last (as InsertDeviceText makes it): only the new
/// element is parsed, the rest of `before` shifted. Falls back to ReadDomain(text) when the
/// texts do not differ by that insertion.
Result<Domain> ReadWithInsertion(const Domain& before, std::string text,
                                 std::pair<size_t, size_t> inserted);

/// 1-based line of a source offset.
int LineOf(const std::string& text, size_t offset);

}  // namespace pciplan
