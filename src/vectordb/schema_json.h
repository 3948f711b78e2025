// CollectionSchema <-> JSON, as the manifest stores it (docs/format/vectordb.md) and the JSON
// API shows it. Header-only; pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include "vector/types.h"
#include "vlake/status.h"

namespace vlake::vectordb {

inline nlohmann::json SchemaToJson(const vector::CollectionSchema& s) {
  using json = nlohmann::json;
  using vector::FieldSchema;
  using vector::CollectionSchema;
  json fields = json::array();
  for (const FieldSchema& f : s.fields) {
    json j = {{"name", f.name}, {"type", std::string(vector::FieldTypeName(f.type))}};
    if (f.dim) j["dim"] = f.dim;
    if (f.primary_key) j["primary_key"] = true;
    if (f.auto_id) j["auto_id"] = true;
    if (f.max_length) j["max_length"] = f.max_length;
    if (f.dynamic) j["dynamic"] = true;
    fields.push_back(j);
  }
  json out = {{"name", s.name}, {"metric", std::string(vector::MetricName(s.metric))},
              {"fields", fields}};
  if (!s.key_field.empty()) out["key_field"] = s.key_field;
  return out;
}

inline Result<vector::CollectionSchema> SchemaFromJson(const nlohmann::json& j) {
  using json = nlohmann::json;
  using vector::FieldSchema;
  using vector::CollectionSchema;
  CollectionSchema s;
  s.name = j.at("name").get<std::string>();
  VLAKE_ASSIGN_OR_RETURN(s.metric, vector::ParseMetric(j.at("metric").get<std::string>()));
  for (const json& f : j.at("fields")) {
    FieldSchema fs;
    fs.name = f.at("name").get<std::string>();
    VLAKE_ASSIGN_OR_RETURN(fs.type, vector::ParseFieldType(f.at("type").get<std::string>()));
    fs.dim = f.value("dim", 0);
    fs.primary_key = f.value("primary_key", false);
    fs.auto_id = f.value("auto_id", false);
    fs.max_length = f.value("max_length", 0);
    fs.dynamic = f.value("dynamic", false);
    s.fields.push_back(fs);
  }
  s.key_field = j.value("key_field", "");
  VLAKE_RETURN_IF_ERROR(s.Validate());
  return s;
}

}  // namespace vlake::vectordb
