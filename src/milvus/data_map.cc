#include "milvus/data_map.h"

#include "common/encoding.h"
#include "milvus/schema_map.h"

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

namespace vlake::milvus {

namespace ps = ::milvus::proto::schema;
namespace pc = ::milvus::proto::common;
using vector::FieldType;

namespace {

Status Bad(const std::string& why) { return Status(Code::kInvalidArgument, why); }

const ps::FieldData* FindColumn(const FieldDatas& columns, const std::string& name) {
  for (const ps::FieldData& c : columns) {
    if (c.field_name() == name) return &c;
  }
  return nullptr;
}

Result<int64_t> ParseInt(const std::string& what, const std::string& text) {
  std::optional<int64_t> v = ParseInt64(text);
  if (!v) return Bad(what + " must be an integer, not '" + text + "'");
  return *v;
}

// `key` from the params JSON object, else from the flat pairs; "" when neither has it.
std::string Lookup(const nlohmann::json& json, const KeyValues& flat, const std::string& key) {
  if (json.is_object()) {
    auto it = json.find(key);
    if (it != json.end()) return it->is_string() ? it->get<std::string>() : it->dump();
  }
  return Param(flat, key);
}

Result<nlohmann::json> ParamsJson(const KeyValues& params) {
  const std::string text = Param(params, "params");
  if (text.empty()) return nlohmann::json::object();
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Bad("params must be a JSON object: " + text);
  return j;
}

Result<vector::Metric> MetricOf(const std::string& name) {
  if (name == "L2") return vector::Metric::kL2;
  if (name == "IP") return vector::Metric::kIP;
  if (name == "COSINE") return vector::Metric::kCosine;
  return Bad("metric_type " + name + " is not supported (L2, IP, COSINE)");
}

}  // namespace

std::string Param(const KeyValues& params, const std::string& key) {
  for (const pc::KeyValuePair& kv : params) {
    if (kv.key() == key) return kv.value();
  }
  return "";
}

Result<vector::RowBatch> RowsFromFieldData(const vector::CollectionSchema& schema,
                                           const FieldDatas& columns, uint32_t num_rows,
                                           const std::string& partition) {
  if (num_rows == 0) return Bad("num_rows must be at least 1");
  const vector::FieldSchema* dynamic = schema.dynamic_field();
  const ps::FieldData* meta = nullptr;
  for (const ps::FieldData& c : columns) {
    if (c.is_dynamic() || c.field_name() == kDynamicField) {
      if (dynamic == nullptr) {
        return Bad("the collection has no dynamic field: enable it at creation to insert "
                   "fields that are not in the schema");
      }
      if (meta != nullptr) return Bad("the dynamic field is given twice");
      meta = &c;
      continue;
    }
    const vector::FieldSchema* f = schema.Find(c.field_name());
    if (f == nullptr || IsHiddenField(c.field_name())) {
      return Bad("field " + c.field_name() + " does not exist in collection " + schema.name);
    }
    if (f->primary_key && f->auto_id) {
      return Bad("primary key '" + f->name + "' is autoID: do not pass values for it");
    }
  }
  std::vector<vector::FieldSchema> fields;
  for (const auto& f : schema.fields) {
    if (!(f.primary_key && f.auto_id)) fields.push_back(f);
  }
  vector::RowBatch batch(fields);
  const size_t n = num_rows;
  for (vector::ColumnData& col : batch.mutable_columns()) {
    const std::string& name = col.field.name;
    if (name == kPartitionField) {
      for (size_t r = 0; r < n; ++r) {
        col.bytes += partition;
        col.offsets.push_back(col.bytes.size());
      }
      continue;
    }
    const ps::FieldData* c = col.field.dynamic ? meta : FindColumn(columns, name);
    if (c == nullptr && col.field.dynamic) {
      for (size_t r = 0; r < n; ++r) {
        col.bytes += "{}";
        col.offsets.push_back(col.bytes.size());
      }
      continue;
    }
    if (c == nullptr) return Bad("missing field '" + name + "'");
    if (c->valid_data_size() > 0) return Bad("field '" + name + "': null values are not supported");
    auto count = [&](size_t got) -> Status {
      if (got != n) {
        return Bad("field '" + name + "' has " + std::to_string(got) + " values for " +
                   std::to_string(n) + " rows");
      }
      return Status::Ok();
    };
    auto must_be = [&](const char* what) {
      return Bad("field '" + name + "' must be " + what + " data");
    };
    const ps::ScalarField& s = c->scalars();
    const bool scalars = c->has_scalars();
    switch (col.field.type) {
      case FieldType::kInt8:
      case FieldType::kInt16:
      case FieldType::kInt32:
        // The SDKs send the narrow integers as int_data; long_data is taken too.
        if (scalars && s.has_int_data()) {
          VLAKE_RETURN_IF_ERROR(count(static_cast<size_t>(s.int_data().data_size())));
          col.int64s.assign(s.int_data().data().begin(), s.int_data().data().end());
        } else if (scalars && s.has_long_data()) {
          VLAKE_RETURN_IF_ERROR(count(static_cast<size_t>(s.long_data().data_size())));
          col.int64s.assign(s.long_data().data().begin(), s.long_data().data().end());
        } else {
          return must_be(ps::DataType_Name(WireType(col.field.type)).c_str());
        }
        break;
      case FieldType::kInt64:
        if (!scalars || !s.has_long_data()) return must_be("Int64");
        VLAKE_RETURN_IF_ERROR(count(static_cast<size_t>(s.long_data().data_size())));
        col.int64s.assign(s.long_data().data().begin(), s.long_data().data().end());
        break;
      case FieldType::kFloat:
        if (scalars && s.has_float_data()) {
          VLAKE_RETURN_IF_ERROR(count(static_cast<size_t>(s.float_data().data_size())));
          col.doubles.assign(s.float_data().data().begin(), s.float_data().data().end());
        } else if (scalars && s.has_double_data()) {
          VLAKE_RETURN_IF_ERROR(count(static_cast<size_t>(s.double_data().data_size())));
          col.doubles.assign(s.double_data().data().begin(), s.double_data().data().end());
        } else {
          return must_be("Float");
        }
        break;
      case FieldType::kDouble:
        if (!scalars || !s.has_double_data()) return must_be("Double");
        VLAKE_RETURN_IF_ERROR(count(static_cast<size_t>(s.double_data().data_size())));
        col.doubles.assign(s.double_data().data().begin(), s.double_data().data().end());
        break;
      case FieldType::kBool:
        if (!scalars || !s.has_bool_data()) return must_be("Bool");
        VLAKE_RETURN_IF_ERROR(count(static_cast<size_t>(s.bool_data().data_size())));
        for (bool b : s.bool_data().data()) col.bools.push_back(b ? 1 : 0);
        break;
      case FieldType::kVarchar:
        if (!scalars || !s.has_string_data()) return must_be("VarChar");
        VLAKE_RETURN_IF_ERROR(count(static_cast<size_t>(s.string_data().data_size())));
        for (const std::string& v : s.string_data().data()) {
          col.bytes += v;
          col.offsets.push_back(col.bytes.size());
        }
        break;
      case FieldType::kJson:
        if (!scalars || !s.has_json_data()) return must_be("JSON");
        VLAKE_RETURN_IF_ERROR(count(static_cast<size_t>(s.json_data().data_size())));
        for (const std::string& v : s.json_data().data()) {
          col.bytes += v;  // the engine checks each document
          col.offsets.push_back(col.bytes.size());
        }
        break;
      case FieldType::kFloatVector: {
        if (!c->has_vectors() || !c->vectors().has_float_vector()) return must_be("FloatVector");
        const ps::VectorField& v = c->vectors();
        if (v.dim() != 0 && v.dim() != col.field.dim) {
          return Bad("field '" + name + "': dim " + std::to_string(v.dim()) + ", the collection's is " +
                     std::to_string(col.field.dim));
        }
        const auto& data = v.float_vector().data();
        if (static_cast<size_t>(data.size()) != n * static_cast<size_t>(col.field.dim)) {
          return Bad("field '" + name + "' has " + std::to_string(data.size()) + " floats for " +
                     std::to_string(n) + " rows of dim " + std::to_string(col.field.dim));
        }
        col.floats.assign(data.begin(), data.end());
        break;
      }
    }
  }
  VLAKE_RETURN_IF_ERROR(batch.Seal());
  return batch;
}

ps::FieldData PrimaryKeyData(const vector::FieldSchema& pk,
                             const std::vector<vectordb::FieldValue>& values) {
  ps::FieldData out = FieldDataOf(pk, values);
  out.set_field_id(100);
  return out;
}

void SetIds(const vector::FieldSchema& pk, const std::vector<vectordb::FieldValue>& values,
            ps::IDs* ids) {
  if (pk.type == FieldType::kVarchar) {
    auto* d = ids->mutable_str_id()->mutable_data();
    for (const auto& v : values) {
      *d->Add() = std::holds_alternative<std::string>(v) ? std::get<std::string>(v) : std::string();
    }
  } else {
    auto* d = ids->mutable_int_id()->mutable_data();
    for (const auto& v : values) d->Add(std::holds_alternative<int64_t>(v) ? std::get<int64_t>(v) : 0);
  }
}

std::string PickKeys(std::string_view document, const std::vector<std::string>& keys) {
  nlohmann::json doc = nlohmann::json::parse(document, nullptr, false);
  nlohmann::json out = nlohmann::json::object();
  if (doc.is_object()) {
    for (const std::string& k : keys) {
      auto it = doc.find(k);
      if (it != doc.end()) out[k] = *it;
    }
  }
  return out.dump();
}

ps::FieldData FieldDataOf(const vector::FieldSchema& field,
                          const std::vector<vectordb::FieldValue>& values) {
  ps::FieldData out;
  out.set_field_name(field.name);
  out.set_type(WireType(field.type));
  auto int_of = [](const vectordb::FieldValue& v) {
    return std::holds_alternative<int64_t>(v) ? std::get<int64_t>(v) : 0;
  };
  auto double_of = [](const vectordb::FieldValue& v) {
    return std::holds_alternative<double>(v) ? std::get<double>(v) : 0;
  };
  auto string_of = [](const vectordb::FieldValue& v) -> const std::string& {
    static const std::string kEmpty;
    return std::holds_alternative<std::string>(v) ? std::get<std::string>(v) : kEmpty;
  };
  switch (field.type) {
    case FieldType::kInt8:
    case FieldType::kInt16:
    case FieldType::kInt32: {
      auto* d = out.mutable_scalars()->mutable_int_data();
      for (const auto& v : values) d->add_data(static_cast<int32_t>(int_of(v)));
      break;
    }
    case FieldType::kInt64: {
      auto* d = out.mutable_scalars()->mutable_long_data();
      for (const auto& v : values) d->add_data(int_of(v));
      break;
    }
    case FieldType::kFloat: {
      auto* d = out.mutable_scalars()->mutable_float_data();
      for (const auto& v : values) d->add_data(static_cast<float>(double_of(v)));
      break;
    }
    case FieldType::kDouble: {
      auto* d = out.mutable_scalars()->mutable_double_data();
      for (const auto& v : values) d->add_data(double_of(v));
      break;
    }
    case FieldType::kBool: {
      auto* d = out.mutable_scalars()->mutable_bool_data();
      for (const auto& v : values) d->add_data(std::holds_alternative<bool>(v) && std::get<bool>(v));
      break;
    }
    case FieldType::kVarchar: {
      auto* d = out.mutable_scalars()->mutable_string_data();
      for (const auto& v : values) d->add_data(string_of(v));
      break;
    }
    case FieldType::kJson: {
      out.set_is_dynamic(field.dynamic);
      auto* d = out.mutable_scalars()->mutable_json_data();
      for (const auto& v : values) d->add_data(string_of(v));
      break;
    }
    case FieldType::kFloatVector: {
      auto* vf = out.mutable_vectors();
      vf->set_dim(field.dim);
      auto* d = vf->mutable_float_vector();
      for (const auto& v : values) {
        if (std::holds_alternative<std::vector<float>>(v)) {
          const auto& f = std::get<std::vector<float>>(v);
          d->mutable_data()->Add(f.begin(), f.end());
        } else {
          for (int i = 0; i < field.dim; ++i) d->add_data(0);
        }
      }
      break;
    }
  }
  return out;
}

Result<IndexChoice> IndexFromParams(const KeyValues& params) {
  VLAKE_ASSIGN_OR_RETURN(nlohmann::json json, ParamsJson(params));
  IndexChoice c;
  c.index_type = Param(params, "index_type");
  if (c.index_type.empty()) c.index_type = "AUTOINDEX";
  const std::string metric = Param(params, "metric_type");
  if (!metric.empty()) {
    VLAKE_ASSIGN_OR_RETURN(vector::Metric m, MetricOf(metric));
    c.metric = m;
  }
  std::string type = c.index_type;
  if (type.rfind("GPU_", 0) == 0) {
    c.device = vectordb::BuildDevice::kGpu;
    type = type.substr(4);
    if (type == "CAGRA") type = "HNSW";  // exported to an HNSW graph the CPU engine serves
    if (type == "BRUTE_FORCE") type = "FLAT";
  }
  auto num = [&](const std::string& key, int64_t fallback) -> Result<int64_t> {
    const std::string v = Lookup(json, params, key);
    if (v.empty()) return fallback;
    return ParseInt(key, v);
  };
  if (type == "FLAT") {
    c.factory = "FLAT";
  } else if (type == "IVF_FLAT" || type == "IVF_SQ8") {
    VLAKE_ASSIGN_OR_RETURN(int64_t nlist, num("nlist", 128));
    c.factory = type + ":nlist=" + std::to_string(nlist);
  } else if (type == "IVF_PQ") {
    VLAKE_ASSIGN_OR_RETURN(int64_t nlist, num("nlist", 128));
    VLAKE_ASSIGN_OR_RETURN(int64_t m, num("m", 8));
    VLAKE_ASSIGN_OR_RETURN(int64_t nbits, num("nbits", 8));
    c.factory = "IVF_PQ:nlist=" + std::to_string(nlist) + ",m=" + std::to_string(m) +
                ",nbits=" + std::to_string(nbits);
  } else if (type == "HNSW" || type == "AUTOINDEX") {
    VLAKE_ASSIGN_OR_RETURN(int64_t m, num("M", 16));
    VLAKE_ASSIGN_OR_RETURN(int64_t ef, num("efConstruction", 200));
    c.factory = "HNSW:M=" + std::to_string(m) + ",efConstruction=" + std::to_string(ef);
  } else {
    return Bad("index_type " + c.index_type +
               " is not supported (FLAT, IVF_FLAT, IVF_SQ8, IVF_PQ, HNSW, AUTOINDEX, GPU_IVF_FLAT, "
               "GPU_IVF_PQ, GPU_CAGRA, GPU_BRUTE_FORCE)");
  }
  return c;
}

Result<SearchChoice> SearchFromParams(const KeyValues& params) {
  VLAKE_ASSIGN_OR_RETURN(nlohmann::json json, ParamsJson(params));
  SearchChoice c;
  std::string topk = Param(params, "topk");
  if (topk.empty()) topk = Param(params, "limit");
  if (!topk.empty()) {
    VLAKE_ASSIGN_OR_RETURN(c.topk, ParseInt("topk", topk));
  }
  const std::string offset = Param(params, "offset");
  if (!offset.empty()) {
    VLAKE_ASSIGN_OR_RETURN(c.offset, ParseInt("offset", offset));
  }
  if (c.topk < 1 || c.offset < 0 || c.topk + c.offset > vector::kMaxTopK) {
    return Bad("topk must be >= 1, offset >= 0, topk + offset <= 16384");
  }
  c.params.k = c.topk + c.offset;
  const std::string metric = Param(params, "metric_type");
  if (!metric.empty()) {
    VLAKE_ASSIGN_OR_RETURN(vector::Metric m, MetricOf(metric));
    c.metric = m;
  }
  for (const char* key : {"ef", "nprobe"}) {
    const std::string v = Lookup(json, params, key);
    if (v.empty()) continue;
    VLAKE_ASSIGN_OR_RETURN(int64_t n, ParseInt(key, v));
    if (n < 1) return Bad(std::string(key) + " must be >= 1");
    (std::strcmp(key, "ef") == 0 ? c.params.ef : c.params.nprobe) = n;
  }
  for (const char* key : {"radius", "range_filter"}) {
    const std::string v = Lookup(json, params, key);
    if (v.empty()) continue;
    char* end = nullptr;
    const float f = std::strtof(v.c_str(), &end);
    if (end == v.c_str() || *end != '\0' || !std::isfinite(f)) {
      return Bad(std::string(key) + " must be a number");
    }
    (std::strcmp(key, "radius") == 0 ? c.params.radius : c.params.range_filter) = f;
  }
  const std::string round = Param(params, "round_decimal");
  if (!round.empty()) {
    VLAKE_ASSIGN_OR_RETURN(int64_t r, ParseInt("round_decimal", round));
    c.round_decimal = static_cast<int>(r);
  }
  return c;
}

Result<std::vector<float>> QueryVectors(const std::string& placeholder_group, int dim,
                                        int64_t* nq) {
  pc::PlaceholderGroup group;
  if (!group.ParseFromString(placeholder_group)) {
    return Bad("placeholder_group is not a serialized PlaceholderGroup");
  }
  if (group.placeholders_size() != 1) return Bad("placeholder_group must hold one placeholder");
  const pc::PlaceholderValue& p = group.placeholders(0);
  if (p.type() != pc::FloatVector) return Bad("only FloatVector queries are supported");
  std::vector<float> out;
  out.reserve(static_cast<size_t>(p.values_size()) * dim);
  for (const std::string& v : p.values()) {
    if (v.size() != static_cast<size_t>(dim) * sizeof(float)) {
      return Bad("a query vector has " + std::to_string(v.size() / sizeof(float)) +
                 " floats; the collection's dim is " + std::to_string(dim));
    }
    const size_t at = out.size();
    out.resize(at + static_cast<size_t>(dim));
    std::memcpy(out.data() + at, v.data(), v.size());
  }
  *nq = p.values_size();
  if (*nq == 0) return Bad("no query vectors");
  return out;
}

}  // namespace vlake::milvus
