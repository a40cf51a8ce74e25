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

/// The data files compiled into the binary (the project's data/ folder at build time).
const std::vector<DataFile>& BuiltinDataFiles();

/// The catalogue from BuiltinDataFiles(), loaded once. Aborts if the built-in data is invalid
/// (a build defect, caught by the data tests).
const Catalog& BuiltinCatalog();

}  // namespace pciplan
