#include "milvus/partitions.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "milvus/schema_map.h"
#include "vector/filter.h"

namespace vlake::milvus {

namespace {

using json = nlohmann::json;

constexpr const char* kProperty = "milvus.partitions";

int64_t PartitionId(const std::string& collection, const std::string& partition) {
  return StableId(collection + "/" + partition);
}

Status NotFound(const std::string& partition) {
  return Status(Code::kNotFound, "partition not found[partition=" + partition + "]");
}

// The stored list (without _default).
Result<std::vector<PartitionInfo>> Stored(vectordb::VectorEngine* engine,
                                          const std::string& collection) {
  VLAKE_ASSIGN_OR_RETURN(auto props, engine->Properties(collection));
  std::vector<PartitionInfo> out;
  auto it = props.find(kProperty);
  if (it == props.end()) return out;
  json list = json::parse(it->second, nullptr, false);
  if (!list.is_array()) {
    return Status(Code::kCorruption, "collection " + collection + ": bad partition list");
  }
  for (const json& p : list) {
    if (!p.is_object() || !p.contains("name") || !p["name"].is_string()) {
      return Status(Code::kCorruption, "collection " + collection + ": bad partition entry");
    }
    PartitionInfo info;
    info.name = p["name"].get<std::string>();
    info.id = p.value("id", int64_t{0});
    info.created_ms = p.value("created_ms", uint64_t{0});
    out.push_back(std::move(info));
  }
  return out;
}

Status Store(vectordb::VectorEngine* engine, const std::string& collection,
             const std::vector<PartitionInfo>& list) {
  json out = json::array();
  for (const PartitionInfo& p : list) {
    out.push_back({{"name", p.name}, {"id", p.id}, {"created_ms", p.created_ms}});
  }
  return engine->SetProperty(collection, kProperty, list.empty() ? "" : out.dump());
}

std::string Quoted(const std::string& name) { return "\"" + name + "\""; }  // names are [A-Za-z0-9_]

}  // namespace

Result<std::vector<PartitionInfo>> ListPartitions(vectordb::VectorEngine* engine,
                                                  const std::string& collection) {
  VLAKE_ASSIGN_OR_RETURN(std::vector<PartitionInfo> stored, Stored(engine, collection));
  std::vector<PartitionInfo> out;
  out.push_back({std::string(kDefaultPartition), PartitionId(collection, "_default"), 0});
  out.insert(out.end(), stored.begin(), stored.end());
  return out;
}

Status CheckPartitions(vectordb::VectorEngine* engine, const std::string& collection,
                       const std::vector<std::string>& names) {
  std::vector<PartitionInfo> list;
  bool listed = false;
  for (const std::string& n : names) {
    if (n.empty() || n == kDefaultPartition) continue;
    if (!listed) {
      VLAKE_ASSIGN_OR_RETURN(list, ListPartitions(engine, collection));
      listed = true;
    }
    bool found = false;
    for (const PartitionInfo& p : list) found = found || p.name == n;
    if (!found) return NotFound(n);
  }
  return Status::Ok();
}

Status CreatePartition(vectordb::VectorEngine* engine, const vector::CollectionSchema& schema,
                       const std::string& partition) {
  if (!vector::IsValidName(partition)) {
    return Status(Code::kInvalidArgument, "invalid partition name " + partition +
                                              ": use 1-255 of [A-Za-z0-9_], not starting with a "
                                              "digit");
  }
  if (partition == kDefaultPartition) return Status::Ok();
  if (!HasPartitionColumn(schema)) {
    return Status(Code::kInvalidArgument, "collection " + schema.name +
                                              " was created before vlake served partitions: it "
                                              "has only _default");
  }
  VLAKE_ASSIGN_OR_RETURN(std::vector<PartitionInfo> list, Stored(engine, schema.name));
  for (const PartitionInfo& p : list) {
    if (p.name == partition) return Status::Ok();
  }
  if (list.size() + 1 >= kMaxPartitions) {
    return Status(Code::kInvalidArgument, "partition number (" + std::to_string(kMaxPartitions) +
                                              ") exceeds max configuration");
  }
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  list.push_back({partition, PartitionId(schema.name, partition), static_cast<uint64_t>(now)});
  return Store(engine, schema.name, list);
}

Status DropPartition(vectordb::VectorEngine* engine, const vector::CollectionSchema& schema,
                     const std::string& partition) {
  if (partition == kDefaultPartition || partition.empty()) {
    return Status(Code::kInvalidArgument, "default partition cannot be deleted");
  }
  VLAKE_ASSIGN_OR_RETURN(std::vector<PartitionInfo> list, Stored(engine, schema.name));
  auto it = std::find_if(list.begin(), list.end(),
                         [&](const PartitionInfo& p) { return p.name == partition; });
  if (it == list.end()) return Status::Ok();
  const std::string filter = std::string(kPartitionField) + " == " + Quoted(partition);
  VLAKE_RETURN_IF_ERROR(engine->Delete(schema.name, {}, filter).status());
  list.erase(it);
  VLAKE_RETURN_IF_ERROR(Store(engine, schema.name, list));
  return engine->Delete(schema.name, {}, filter).status();
}

Result<std::string> WithPartitions(const vector::CollectionSchema& schema, const std::string& expr,
                                   const std::vector<std::string>& partitions) {
  if (partitions.empty() || !HasPartitionColumn(schema)) return expr;
  VLAKE_RETURN_IF_ERROR(vector::Filter::Parse(expr, schema).status());
  std::string in;
  for (const std::string& p : partitions) {
    in += (in.empty() ? "" : ", ") + Quoted(p.empty() ? std::string(kDefaultPartition) : p);
  }
  std::string term = std::string(kPartitionField) + " in [" + in + "]";
  if (expr.empty()) return term;
  return "(" + expr + ") and " + term;
}

}  // namespace vlake::milvus
