// BuiltinCatalog(): the catalogue decoded from the image the build made of data/ (no JSON is
// parsed at run time). Kept apart from model_loader.cc: the image generator links the loader
// and has no image yet.
#include <cstdio>
#include <cstdlib>

#include "pciplan/model/catalog_image.h"
#include "pciplan/model/model_loader.h"

namespace pciplan {
namespace {

template <class T>
T Unwrap(Result<T> decoded) {
  if (!decoded) {
    for (const Diagnostic& d : decoded.errors()) {
      std::fprintf(stderr, "%s\n", d.Render("data").c_str());
    }
    std::abort();
  }
  return std::move(decoded.value());
}

// Decoded on first use only: commands that plan never read the QEMU facts.
const QemuFacts& BuiltinQemuFacts() {
  static const QemuFacts* facts = new QemuFacts(Unwrap(DecodeQemuFacts(BuiltinQemuImage())));
  return *facts;
}

}  // namespace

const Catalog& BuiltinCatalog() {
  static const Catalog* catalog = [] {
    auto* c = new Catalog(Unwrap(DecodeCatalog(BuiltinCatalogImage())));
    c->qemu_part = QemuPart(&BuiltinQemuFacts);
    c->IndexClasses();
    return c;
  }();
  return *catalog;
}

}  // namespace pciplan
