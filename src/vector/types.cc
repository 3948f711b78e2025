#include "vector/types.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <set>

namespace vlake::vector {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::string_view MetricName(Metric metric) {
  switch (metric) {
    case Metric::kL2: return "L2";
    case Metric::kIP: return "IP";
    case Metric::kCosine: return "COSINE";
  }
  return "?";
}

Result<Metric> ParseMetric(std::string_view name) {
  for (Metric m : {Metric::kL2, Metric::kIP, Metric::kCosine}) {
    if (EqualsIgnoreCase(name, MetricName(m))) return m;
  }
  return Status(Code::kInvalidArgument,
                "unknown metric '" + std::string(name) + "' (want L2, IP or COSINE)");
}

Storage StorageOf(FieldType type) {
  switch (type) {
    case FieldType::kInt8:
    case FieldType::kInt16:
    case FieldType::kInt32:
    case FieldType::kInt64: return Storage::kInt64;
    case FieldType::kFloat:
    case FieldType::kDouble: return Storage::kDouble;
    case FieldType::kBool: return Storage::kBool;
    case FieldType::kVarchar:
    case FieldType::kJson: return Storage::kBytes;
    case FieldType::kFloatVector: return Storage::kFloats;
  }
  return Storage::kInt64;
}

int64_t IntMin(FieldType type) {
  switch (type) {
    case FieldType::kInt8: return INT8_MIN;
    case FieldType::kInt16: return INT16_MIN;
    case FieldType::kInt32: return INT32_MIN;
    default: return INT64_MIN;
  }
}

int64_t IntMax(FieldType type) {
  switch (type) {
    case FieldType::kInt8: return INT8_MAX;
    case FieldType::kInt16: return INT16_MAX;
    case FieldType::kInt32: return INT32_MAX;
    default: return INT64_MAX;
  }
}

namespace {
constexpr FieldType kAllTypes[] = {
    FieldType::kInt8,  FieldType::kInt16,   FieldType::kInt32, FieldType::kInt64,
    FieldType::kFloat, FieldType::kDouble,  FieldType::kBool,  FieldType::kVarchar,
    FieldType::kJson,  FieldType::kFloatVector};
}  // namespace

std::string_view FieldTypeName(FieldType type) {
  switch (type) {
    case FieldType::kInt8: return "int8";
    case FieldType::kInt16: return "int16";
    case FieldType::kInt32: return "int32";
    case FieldType::kInt64: return "int64";
    case FieldType::kFloat: return "float32";
    case FieldType::kDouble: return "double";
    case FieldType::kBool: return "bool";
    case FieldType::kVarchar: return "varchar";
    case FieldType::kJson: return "json";
    case FieldType::kFloatVector: return "float_vector";
  }
  return "?";
}

Result<FieldType> ParseFieldType(std::string_view name) {
  for (FieldType t : kAllTypes) {
    if (EqualsIgnoreCase(name, FieldTypeName(t))) return t;
  }
  if (EqualsIgnoreCase(name, "float")) return FieldType::kDouble;
  if (EqualsIgnoreCase(name, "string")) return FieldType::kVarchar;
  return Status(Code::kInvalidArgument,
                "unknown field type '" + std::string(name) +
                    "' (want int8, int16, int32, int64, float32, double, bool, varchar, json or "
                    "float_vector)");
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxFieldNameBytes) return false;
  if (std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

Status CollectionSchema::Validate() const {
  if (!IsValidName(name)) {
    return Status(Code::kInvalidArgument, "invalid collection name '" + name +
                                              "': use 1-255 of [A-Za-z0-9_], not starting "
                                              "with a digit");
  }
  std::set<std::string_view> seen;
  int primaries = 0, vectors = 0, dynamics = 0;
  for (const FieldSchema& f : fields) {
    if (f.dynamic) {
      ++dynamics;
      if (f.type != FieldType::kJson) {
        return Status(Code::kInvalidArgument, "the dynamic field '" + f.name + "' must be json");
      }
    }
    if (!IsValidName(f.name) && !(f.dynamic && f.name == "$meta")) {
      return Status(Code::kInvalidArgument, "invalid field name '" + f.name + "'");
    }
    if (!seen.insert(f.name).second) {
      return Status(Code::kInvalidArgument, "duplicate field name '" + f.name + "'");
    }
    if (f.primary_key) {
      ++primaries;
      if (f.type != FieldType::kInt64) {
        return Status(Code::kInvalidArgument, "primary key '" + f.name + "' must be int64");
      }
    } else if (f.auto_id) {
      return Status(Code::kInvalidArgument, "auto_id is only allowed on the primary key");
    }
    if (f.type == FieldType::kFloatVector) {
      ++vectors;
      if (f.dim < 1 || f.dim > kMaxDim) {
        return Status(Code::kInvalidArgument, "vector field '" + f.name + "' has dim " +
                                                  std::to_string(f.dim) + ", want 1.." +
                                                  std::to_string(kMaxDim));
      }
    } else if (f.dim != 0) {
      return Status(Code::kInvalidArgument, "dim is only allowed on the vector field");
    }
    if (f.max_length != 0 &&
        (f.type != FieldType::kVarchar || f.max_length < 0 ||
         static_cast<size_t>(f.max_length) > kMaxVarcharBytes)) {
      return Status(Code::kInvalidArgument, "field '" + f.name + "': max_length must be 1.." +
                                                std::to_string(kMaxVarcharBytes) +
                                                " and only on varchar fields");
    }
  }
  if (dynamics > 1) {
    return Status(Code::kInvalidArgument, "a collection has at most one dynamic field");
  }
  if (!key_field.empty()) {
    const FieldSchema* k = Find(key_field);
    if (k == nullptr || (k->type != FieldType::kInt64 && k->type != FieldType::kVarchar) ||
        (k->primary_key && k->auto_id)) {
      return Status(Code::kInvalidArgument,
                    "key field '" + key_field + "' must be an int64 or varchar field given by "
                    "the client");
    }
  }
  if (primaries != 1) {
    return Status(Code::kInvalidArgument, "a collection needs exactly one int64 primary key");
  }
  if (vectors != 1) {
    return Status(Code::kInvalidArgument, "a collection needs exactly one float_vector field");
  }
  return Status::Ok();
}

const FieldSchema* CollectionSchema::Find(std::string_view field) const {
  for (const FieldSchema& f : fields) {
    if (f.name == field) return &f;
  }
  return nullptr;
}

const FieldSchema* CollectionSchema::dynamic_field() const {
  for (const FieldSchema& f : fields) {
    if (f.dynamic) return &f;
  }
  return nullptr;
}

const FieldSchema& CollectionSchema::key() const {
  if (!key_field.empty()) return *Find(key_field);
  return primary();
}

const FieldSchema& CollectionSchema::primary() const {
  for (const FieldSchema& f : fields) {
    if (f.primary_key) return f;
  }
  VLAKE_CHECK(false);
  return fields.front();
}

const FieldSchema& CollectionSchema::vector() const {
  for (const FieldSchema& f : fields) {
    if (f.type == FieldType::kFloatVector) return f;
  }
  VLAKE_CHECK(false);
  return fields.front();
}

}  // namespace vlake::vector
