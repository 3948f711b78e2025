#include "milvus/rest_rows.h"

#include <climits>
#include <set>

#include "common/encoding.h"

namespace vlake::milvus {

namespace ps = ::milvus::proto::schema;
using json = nlohmann::json;

namespace {

Status Bad(const std::string& why) { return Status(Code::kInvalidArgument, why); }

json CellOf(const ps::FieldData& f, int64_t row, bool int64_as_number) {
  if (f.has_vectors()) {
    const auto& v = f.vectors();
    json a = json::array();
    for (int64_t d = 0; d < v.dim(); ++d) {
      a.push_back(v.float_vector().data(static_cast<int>(row * v.dim() + d)));
    }
    return a;
  }
  const ps::ScalarField& s = f.scalars();
  const int r = static_cast<int>(row);
  if (s.has_long_data()) {
    const int64_t x = s.long_data().data(r);
    return int64_as_number ? json(x) : json(std::to_string(x));
  }
  if (s.has_double_data()) return s.double_data().data(r);
  if (s.has_bool_data()) return s.bool_data().data(r);
  if (s.has_string_data()) return s.string_data().data(r);
  if (s.has_int_data()) return s.int_data().data(r);
  if (s.has_float_data()) return s.float_data().data(r);
  if (s.has_json_data()) {
    json v = json::parse(s.json_data().data(r), nullptr, false);
    return v.is_discarded() ? json(nullptr) : v;
  }
  return nullptr;
}

// One row's value of field `f` into column `col`.
Status AddCell(const ps::FieldSchema& f, const json& v, const std::string& where, ps::FieldData* col) {
  // Only a scalar column touches `scalars` (the oneof: taking it would drop the vectors).
  ps::ScalarField* s = f.data_type() == ps::FloatVector ? nullptr : col->mutable_scalars();
  switch (f.data_type()) {
    case ps::Int8:
    case ps::Int16:
    case ps::Int32: {
      if (!v.is_number_integer()) return Bad(where + " must be an integer");
      const int64_t x = v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX ? INT64_MAX : v.get<int64_t>();
      if (x < INT32_MIN || x > INT32_MAX) return Bad(where + " is out of range for " + ps::DataType_Name(f.data_type()));
      s->mutable_int_data()->add_data(static_cast<int32_t>(x));  // the engine checks Int8/Int16
      break;
    }
    case ps::Int64: {
      std::optional<int64_t> x;
      if (v.is_number_integer() && !(v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX)) {
        x = v.get<int64_t>();
      } else if (v.is_string()) {
        x = ParseInt64(v.get<std::string>());
      }
      if (!x) return Bad(where + " must be an integer");
      s->mutable_long_data()->add_data(*x);
      break;
    }
    case ps::Float:
      if (!v.is_number()) return Bad(where + " must be a number");
      s->mutable_float_data()->add_data(v.get<float>());
      break;
    case ps::Double:
      if (!v.is_number()) return Bad(where + " must be a number");
      s->mutable_double_data()->add_data(v.get<double>());
      break;
    case ps::Bool:
      if (!v.is_boolean()) return Bad(where + " must be true or false");
      s->mutable_bool_data()->add_data(v.get<bool>());
      break;
    case ps::VarChar:
      if (!v.is_string()) return Bad(where + " must be a string");
      s->mutable_string_data()->add_data(v.get<std::string>());
      break;
    case ps::JSON:
      s->mutable_json_data()->add_data(v.dump());
      break;
    case ps::FloatVector: {
      if (!v.is_array()) return Bad(where + " must be an array of numbers");
      auto* fv = col->mutable_vectors()->mutable_float_vector();
      for (const json& x : v) {
        if (!x.is_number()) return Bad(where + " must be an array of numbers");
        fv->add_data(x.get<float>());
      }
      break;
    }
    default:
      return Bad(where + ": type " + ps::DataType_Name(f.data_type()) + " not supported");
  }
  return Status::Ok();
}

}  // namespace

Status ColumnsFromRows(const ps::CollectionSchema& schema, const json& rows, RestFieldDatas* out) {
  if (!rows.is_array() || rows.empty()) return Bad("data must be a non-empty array of rows");
  std::set<std::string> known;
  const bool dynamic = schema.enable_dynamic_field();
  for (const ps::FieldSchema& f : schema.fields()) {
    known.insert(f.name());
    if (f.is_dynamic()) continue;
    if (f.is_primary_key() && f.autoid() && rows[0].is_object() && !rows[0].contains(f.name())) {
      continue;
    }
    ps::FieldData* col = out->Add();
    col->set_field_name(f.name());
    col->set_type(f.data_type());
    for (size_t r = 0; r < rows.size(); ++r) {
      const json& row = rows[r];
      const std::string at = "data[" + std::to_string(r) + "]";
      if (!row.is_object()) return Bad(at + " must be an object");
      auto it = row.find(f.name());
      if (it == row.end()) return Bad(at + ": missing field " + f.name());
      VLAKE_RETURN_IF_ERROR(AddCell(f, *it, at + "." + f.name(), col));
    }
  }
  ps::FieldData* meta = nullptr;
  if (dynamic) {
    meta = out->Add();
    meta->set_field_name("$meta");
    meta->set_type(ps::JSON);
    meta->set_is_dynamic(true);
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    json extra = json::object();
    for (const auto& [key, value] : rows[r].items()) {
      if (known.count(key)) continue;
      if (!dynamic) {
        return Bad("data[" + std::to_string(r) + "]: field " + key +
                   " is not in the schema and the dynamic field is off");
      }
      extra[key] = value;
    }
    if (meta != nullptr) meta->mutable_scalars()->mutable_json_data()->add_data(extra.dump());
  }
  return Status::Ok();
}

int64_t RowsOf(const ps::FieldData& f) {
  if (f.has_vectors()) {
    return f.vectors().dim() > 0 ? f.vectors().float_vector().data_size() / f.vectors().dim() : 0;
  }
  const ps::ScalarField& s = f.scalars();
  if (s.has_long_data()) return s.long_data().data_size();
  if (s.has_double_data()) return s.double_data().data_size();
  if (s.has_bool_data()) return s.bool_data().data_size();
  if (s.has_string_data()) return s.string_data().data_size();
  if (s.has_int_data()) return s.int_data().data_size();
  if (s.has_float_data()) return s.float_data().data_size();
  if (s.has_json_data()) return s.json_data().data_size();
  return 0;
}

void RowsFromColumns(const RestFieldDatas& columns, int64_t begin, int64_t end, bool int64_numbers,
                     const google::protobuf::RepeatedField<float>* scores, const char* score_key,
                     json* out) {
  for (int64_t r = begin; r < end; ++r) {
    json row = json::object();
    for (const ps::FieldData& f : columns) {
      json cell = CellOf(f, r, int64_numbers);
      if (f.is_dynamic()) {
        if (cell.is_object()) {
          for (auto& [k, v] : cell.items()) {
            if (!row.contains(k)) row[k] = v;
          }
        }
        continue;
      }
      row[f.field_name()] = std::move(cell);
    }
    if (scores != nullptr) row[score_key] = scores->Get(static_cast<int>(r));
    out->push_back(std::move(row));
  }
}

std::string FilterLiteral(const json& v) {
  if (!v.is_string()) return v.dump();
  std::string out = "\"";
  for (char c : v.get<std::string>()) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace vlake::milvus
