#include "vector/types.h"

#include <algorithm>
#include <cctype>
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

std::string_view FieldTypeName(FieldType type) {
  switch (type) {
    case FieldType::kInt64: return "int64";
    case FieldType::kDouble: return "double";
    case FieldType::kBool: return "bool";
    case FieldType::kVarchar: return "varchar";
    case FieldType::kFloatVector: return "float_vector";
  }
  return "?";
}

Result<FieldType> ParseFieldType(std::string_view name) {
  for (FieldType t : {FieldType::kInt64, FieldType::kDouble, FieldType::kBool, FieldType::kVarchar,
                      FieldType::kFloatVector}) {
    if (EqualsIgnoreCase(name, FieldTypeName(t))) return t;
  }
  if (EqualsIgnoreCase(name, "float")) return FieldType::kDouble;
  if (EqualsIgnoreCase(name, "string")) return FieldType::kVarchar;
  return Status(Code::kInvalidArgument,
                "unknown field type '" + std::string(name) +
                    "' (want int64, double, bool, varchar or float_vector)");
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
  int primaries = 0, vectors = 0;
  for (const FieldSchema& f : fields) {
    if (!IsValidName(f.name)) {
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
