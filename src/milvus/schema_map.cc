#include "milvus/schema_map.h"

#include <climits>

#include "common/encoding.h"

namespace vlake::milvus {

namespace ps = ::milvus::proto::schema;

namespace {

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

}  // namespace

Result<vector::CollectionSchema> FromMilvusSchema(const ps::CollectionSchema& in,
                                                  const std::string& name) {
  if (!in.name().empty() && in.name() != name) {
    return Status(Code::kInvalidArgument, "the schema's name " + in.name() +
                                              " differs from collection_name " + name);
  }
  if (in.enable_dynamic_field()) return Unsupported("the dynamic field (enable_dynamic_field)");
  vector::CollectionSchema out;
  out.name = name;
  for (const ps::FieldSchema& f : in.fields()) {
    vector::FieldSchema field;
    field.name = f.name();
    if (f.is_dynamic()) return Unsupported("the dynamic field " + f.name());
    if (f.nullable()) return Unsupported("nullable field " + f.name());
    if (f.is_partition_key()) return Unsupported("partition key field " + f.name());
    switch (f.data_type()) {
      case ps::Int64: field.type = vector::FieldType::kInt64; break;
      case ps::Double: field.type = vector::FieldType::kDouble; break;
      case ps::Bool: field.type = vector::FieldType::kBool; break;
      case ps::VarChar: {
        field.type = vector::FieldType::kVarchar;
        VLAKE_ASSIGN_OR_RETURN(int64_t max_length, IntParam(f, "max_length"));
        if (max_length == 0 || max_length > static_cast<int64_t>(vector::kMaxVarcharBytes)) {
          return Status(Code::kInvalidArgument,
                        "field " + f.name() + ": max_length must be 1..65535");
        }
        break;
      }
      case ps::FloatVector: {
        field.type = vector::FieldType::kFloatVector;
        VLAKE_ASSIGN_OR_RETURN(int64_t dim, IntParam(f, "dim"));
        if (dim < 1 || dim > vector::kMaxDim) {
          return Status(Code::kInvalidArgument, "field " + f.name() + ": dim must be 1..32768");
        }
        field.dim = static_cast<int>(dim);
        break;
      }
      default:
        return Unsupported("field " + f.name() + " of data type " +
                           ps::DataType_Name(f.data_type()));
    }
    if (f.is_primary_key()) {
      if (field.type != vector::FieldType::kInt64) {
        return Unsupported("a primary key of type " + ps::DataType_Name(f.data_type()) +
                           " (only Int64)");
      }
      field.primary_key = true;
      field.auto_id = f.autoid() || in.autoid();
    }
    out.fields.push_back(std::move(field));
  }
  VLAKE_RETURN_IF_ERROR(out.Validate());
  return out;
}

ps::CollectionSchema ToMilvusSchema(const vector::CollectionSchema& in) {
  ps::CollectionSchema out;
  out.set_name(in.name);
  int64_t id = 100;
  for (const vector::FieldSchema& f : in.fields) {
    ps::FieldSchema* o = out.add_fields();
    o->set_fieldid(id++);
    o->set_name(f.name);
    o->set_is_primary_key(f.primary_key);
    o->set_autoid(f.auto_id);
    if (f.primary_key && f.auto_id) out.set_autoid(true);
    switch (f.type) {
      case vector::FieldType::kInt64: o->set_data_type(ps::Int64); break;
      case vector::FieldType::kDouble: o->set_data_type(ps::Double); break;
      case vector::FieldType::kBool: o->set_data_type(ps::Bool); break;
      case vector::FieldType::kVarchar: {
        o->set_data_type(ps::VarChar);
        auto* kv = o->add_type_params();
        kv->set_key("max_length");
        kv->set_value(std::to_string(vector::kMaxVarcharBytes));
        break;
      }
      case vector::FieldType::kFloatVector: {
        o->set_data_type(ps::FloatVector);
        auto* kv = o->add_type_params();
        kv->set_key("dim");
        kv->set_value(std::to_string(f.dim));
        break;
      }
    }
  }
  return out;
}

}  // namespace vlake::milvus
