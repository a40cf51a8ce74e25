// Loads the Catalog from the JSON data files (data/controllers.json, data/devices.json,
// data/machines/*.json). Unknown keys, missing fields, bad values and dangling references are
// diagnostics naming the file, the JSON pointer and the field.
#pragma once

#include <string>
#include <vector>

#include "pciplan/base/result.h"
#include "pciplan/model/machine_model.h"

namespace pciplan {

struct DataFile {
  std::string name;  // "controllers.json", "devices.json", "machines/q35.json"
  std::string text;
};

/// Builds the catalogue from the given files (controllers.json and devices.json required, every
/// "machines/..." file is a machine family).
Result<Catalog> LoadCatalog(const std::vector<DataFile>& files);

/// The data files as text (the project's data/ folder at build time): linked into the tests and
/// the catalogue image generator only (target pciplan_data_json), not into the CLI.
const std::vector<DataFile>& BuiltinDataFiles();

/// The catalogue the build's loader read from data/, decoded once from the image compiled into
/// the binary (catalog_image.h); its QEMU facts are decoded on first use. Aborts if the image
/// is damaged (a build defect, caught by the image tests).
const Catalog& BuiltinCatalog();

}  // namespace pciplan
