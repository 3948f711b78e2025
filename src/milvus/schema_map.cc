#include "milvus/schema_map.h"

#include <climits>

#include "common/encoding.h"

namespace vlake::milvus {

namespace ps = ::milvus::proto::schema;
using vector::FieldType;

namespace {

constexpr std::string_view kHiddenPrefix = "__vlake_";
constexpr int kPartitionNameBytes = 255;

Status Unsupported(const std::string& what) {
  return Status(Code::kInvalidArgument, what + " is not supported by vlake (docs/milvus-compat.md)");
}

// The integer value of type param `key`, or -1 when absent; InvalidArgument when malformed.
Result<int64_t> IntParam(const ps::FieldSchema& f, const std::string& key) {
  for (const auto& kv : f.type_params()) {
    if (kv.key() != key) continue;
    std::optional<uint64_t> v = ParseUint64(kv.value());
    if (!v || *v > static_cast<uint64_t>(INT64_MAX)) {
      return Status(Code::kInvalidArgument,
                    "field " + f.name() + ": type param " + key + " must be a non-negative integer");
    }
    return static_cast<int64_t>(*v);
  }
  return int64_t{-1};
}

Result<FieldType> TypeOf(const ps::FieldSchema& f) {
  switch (f.data_type()) {
    case ps::Int8: return FieldType::kInt8;
    case ps::Int16: return FieldType::kInt16;
    case ps::Int32: return FieldType::kInt32;
    case ps::Int64: return FieldType::kInt64;
    case ps::Float: return FieldType::kFloat;
    case ps::Double: return FieldType::kDouble;
    case ps::Bool: return FieldType::kBool;
    case ps::VarChar: return FieldType::kVarchar;
    case ps::JSON: return FieldType::kJson;
    case ps::FloatVector: return FieldType::kFloatVector;
    default:
      return Unsupported("field " + f.name() + " of data type " + ps::DataType_Name(f.data_type()));
  }
}

}  // namespace

ps::DataType WireType(FieldType t) {
  switch (t) {
    case FieldType::kInt8: return ps::Int8;
    case FieldType::kInt16: return ps::Int16;
    case FieldType::kInt32: return ps::Int32;
    case FieldType::kInt64: return ps::Int64;
    case FieldType::kFloat: return ps::Float;
    case FieldType::kDouble: return ps::Double;
    case FieldType::kBool: return ps::Bool;
    case FieldType::kVarchar: return ps::VarChar;
    case FieldType::kJson: return ps::JSON;
    case FieldType::kFloatVector: return ps::FloatVector;
  }
  return ps::None;
}

int64_t StableId(std::string_view name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return static_cast<int64_t>(h & 0x7fffffffffffffffull);
}

namespace {

void AddTypeParam(ps::FieldSchema* f, const std::string& key, const std::string& value) {
  auto* kv = f->add_type_params();
  kv->set_key(key);
  kv->set_value(value);
}

}  // namespace

bool IsHiddenField(std::string_view name) { return name.substr(0, kHiddenPrefix.size()) == kHiddenPrefix; }

const vector::FieldSchema& MilvusPrimary(const vector::CollectionSchema& schema) {
  return schema.key();
}

bool HasPartitionColumn(const vector::CollectionSchema& schema) {
  return schema.Find(kPartitionField) != nullptr;
}

Result<vector::CollectionSchema> FromMilvusSchema(const ps::CollectionSchema& in,
                                                  const std::string& name) {
  if (!in.name().empty() && in.name() != name) {
    return Status(Code::kInvalidArgument, "the schema's name " + in.name() +
                                              " differs from collection_name " + name);
  }
  vector::CollectionSchema out;
  out.name = name;
  bool dynamic = in.enable_dynamic_field();
  bool varchar_key = false;
  for (const ps::FieldSchema& f : in.fields()) {
    if (f.is_dynamic()) {  // some clients list the dynamic field itself
      dynamic = true;
      continue;
    }
    if (IsHiddenField(f.name())) {
      return Status(Code::kInvalidArgument, "field name " + f.name() + ": names starting with " +
                                                std::string(kHiddenPrefix) + " are reserved");
    }
    if (f.name() == kDynamicField) {
      return Status(Code::kInvalidArgument, "field name $meta is reserved for the dynamic field");
    }
    if (f.nullable()) return Unsupported("nullable field " + f.name());
    if (f.is_partition_key()) return Unsupported("partition key field " + f.name());
    vector::FieldSchema field;
    field.name = f.name();
    VLAKE_ASSIGN_OR_RETURN(field.type, TypeOf(f));
    if (field.type == FieldType::kVarchar) {
      VLAKE_ASSIGN_OR_RETURN(int64_t max_length, IntParam(f, "max_length"));
      if (max_length == 0 || max_length > static_cast<int64_t>(vector::kMaxVarcharBytes)) {
        return Status(Code::kInvalidArgument,
                      "field " + f.name() + ": max_length must be 1..65535");
      }
      field.max_length = max_length < 0 ? 0 : static_cast<int>(max_length);
    } else if (field.type == FieldType::kFloatVector) {
      VLAKE_ASSIGN_OR_RETURN(int64_t dim, IntParam(f, "dim"));
      if (dim < 1 || dim > vector::kMaxDim) {
        return Status(Code::kInvalidArgument, "field " + f.name() + ": dim must be 1..32768");
      }
      field.dim = static_cast<int>(dim);
    }
    if (f.is_primary_key()) {
      const bool auto_id = f.autoid() || in.autoid();
      if (field.type == FieldType::kInt64) {
        field.primary_key = true;
        field.auto_id = auto_id;
      } else if (field.type == FieldType::kVarchar) {
        if (auto_id) {
          return Unsupported("autoID on the VarChar primary key " + f.name() + " (Int64 only)");
        }
        if (!out.key_field.empty()) {
          return Status(Code::kInvalidArgument, "a collection has one primary key");
        }
        out.key_field = field.name;
        varchar_key = true;
      } else {
        return Unsupported("a primary key of type " + ps::DataType_Name(f.data_type()) +
                           " (Int64 or VarChar)");
      }
    }
    out.fields.push_back(std::move(field));
  }
  if (varchar_key) {
    vector::FieldSchema rowid;
    rowid.name = std::string(kRowIdField);
    rowid.type = FieldType::kInt64;
    rowid.primary_key = true;
    rowid.auto_id = true;
    out.fields.insert(out.fields.begin(), rowid);
  }
  if (dynamic) {
    vector::FieldSchema meta;
    meta.name = std::string(kDynamicField);
    meta.type = FieldType::kJson;
    meta.dynamic = true;
    out.fields.push_back(meta);
  }
  vector::FieldSchema partition;
  partition.name = std::string(kPartitionField);
  partition.type = FieldType::kVarchar;
  partition.max_length = kPartitionNameBytes;
  out.fields.push_back(partition);
  Status st = out.Validate();
  if (!st.ok() && st.message().find("primary key") != std::string::npos) {
    return Status(Code::kInvalidArgument, "the schema needs one primary key field (Int64 or "
                                          "VarChar): " + st.message());
  }
  VLAKE_RETURN_IF_ERROR(st);
  return out;
}

ps::CollectionSchema ToMilvusSchema(const vector::CollectionSchema& in) {
  ps::CollectionSchema out;
  out.set_name(in.name);
  const vector::FieldSchema& pk = MilvusPrimary(in);
  int64_t id = 100;
  for (const vector::FieldSchema& f : in.fields) {
    if (IsHiddenField(f.name)) continue;
    if (f.dynamic) {  // as Milvus: shown by enable_dynamic_field, not as a field
      out.set_enable_dynamic_field(true);
      continue;
    }
    ps::FieldSchema* o = out.add_fields();
    o->set_fieldid(id++);
    o->set_name(f.name);
    o->set_data_type(WireType(f.type));
    if (&f == &pk) {
      o->set_is_primary_key(true);
      o->set_autoid(f.auto_id);
      if (f.auto_id) out.set_autoid(true);
    }
    if (f.type == FieldType::kVarchar) {
      AddTypeParam(o, "max_length", std::to_string(f.varchar_limit()));
    } else if (f.type == FieldType::kFloatVector) {
      AddTypeParam(o, "dim", std::to_string(f.dim));
    }
  }
  return out;
}

}  // namespace vlake::milvus
