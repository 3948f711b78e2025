// Milvus CollectionSchema <-> vlake schema (schema_map.h) and the Status mapping
// (status_map.h): what the SDKs send for the supported types round-trips, and everything else
// is refused with an InvalidArgument that names it.
#include "milvus/schema_map.h"

#include <gtest/gtest.h>

#include "common/testing.h"
#include "milvus/status_map.h"

namespace vlake::milvus {
namespace {

namespace ps = ::milvus::proto::schema;

ps::FieldSchema* AddField(ps::CollectionSchema* s, const std::string& name, ps::DataType type) {
  ps::FieldSchema* f = s->add_fields();
  f->set_name(name);
  f->set_data_type(type);
  return f;
}

void AddParam(ps::FieldSchema* f, const std::string& key, const std::string& value) {
  auto* kv = f->add_type_params();
  kv->set_key(key);
  kv->set_value(value);
}

ps::CollectionSchema Supported() {
  ps::CollectionSchema s;
  s.set_name("docs");
  ps::FieldSchema* id = AddField(&s, "id", ps::Int64);
  id->set_is_primary_key(true);
  id->set_autoid(true);
  AddParam(AddField(&s, "vec", ps::FloatVector), "dim", "8");
  AddField(&s, "score", ps::Double);
  AddField(&s, "ok", ps::Bool);
  AddParam(AddField(&s, "title", ps::VarChar), "max_length", "200");
  AddField(&s, "n", ps::Int64);
  return s;
}

TEST(MilvusSchema, SupportedTypesRoundTrip) {
  ASSERT_OK_AND_ASSIGN(vector::CollectionSchema schema, FromMilvusSchema(Supported(), "docs"));
  EXPECT_EQ(schema.name, "docs");
  ASSERT_EQ(schema.fields.size(), 7u);  // + the hidden partition column
  EXPECT_TRUE(HasPartitionColumn(schema));
  EXPECT_TRUE(schema.primary().auto_id);
  EXPECT_EQ(schema.dim(), 8);
  EXPECT_EQ(schema.Find("title")->max_length, 200);
  ps::CollectionSchema back = ToMilvusSchema(schema);
  ASSERT_EQ(back.fields_size(), 6);
  EXPECT_EQ(back.fields(0).data_type(), ps::Int64);
  EXPECT_TRUE(back.fields(0).is_primary_key());
  EXPECT_TRUE(back.fields(0).autoid());
  EXPECT_EQ(back.fields(1).data_type(), ps::FloatVector);
  ASSERT_EQ(back.fields(1).type_params_size(), 1);
  EXPECT_EQ(back.fields(1).type_params(0).key(), "dim");
  EXPECT_EQ(back.fields(1).type_params(0).value(), "8");
  EXPECT_EQ(back.fields(4).data_type(), ps::VarChar);
  EXPECT_EQ(back.fields(4).type_params(0).value(), "200");
  EXPECT_EQ(back.fields(0).fieldid(), 100);
  EXPECT_EQ(back.fields(5).fieldid(), 105);
  EXPECT_FALSE(back.enable_dynamic_field());
  // What comes back maps to the same vlake schema.
  ASSERT_OK_AND_ASSIGN(vector::CollectionSchema again, FromMilvusSchema(back, "docs"));
  EXPECT_EQ(ToMilvusSchema(again).SerializeAsString(), back.SerializeAsString());
}

TEST(MilvusSchema, EveryScalarTypeKeepsItsMilvusType) {
  ps::CollectionSchema s = Supported();
  const ps::DataType types[] = {ps::Int8, ps::Int16, ps::Int32, ps::Float, ps::JSON};
  for (ps::DataType t : types) AddField(&s, "f" + std::to_string(t), t);
  ASSERT_OK_AND_ASSIGN(vector::CollectionSchema schema, FromMilvusSchema(s, "docs"));
  EXPECT_EQ(schema.Find("f2")->type, vector::FieldType::kInt8);
  EXPECT_EQ(schema.Find("f10")->type, vector::FieldType::kFloat);
  EXPECT_EQ(schema.Find("f23")->type, vector::FieldType::kJson);
  ps::CollectionSchema back = ToMilvusSchema(schema);
  for (size_t i = 0; i < std::size(types); ++i) {
    EXPECT_EQ(back.fields(6 + static_cast<int>(i)).data_type(), types[i]);
  }
}

TEST(MilvusSchema, VarCharPrimaryKeyIsTheKeyFieldOverAHiddenRowId) {
  ps::CollectionSchema s;
  ps::FieldSchema* id = AddField(&s, "doc_id", ps::VarChar);
  id->set_is_primary_key(true);
  AddParam(id, "max_length", "64");
  AddParam(AddField(&s, "vec", ps::FloatVector), "dim", "4");
  ASSERT_OK_AND_ASSIGN(vector::CollectionSchema schema, FromMilvusSchema(s, "docs"));
  EXPECT_EQ(schema.key_field, "doc_id");
  EXPECT_EQ(schema.primary().name, kRowIdField);
  EXPECT_TRUE(schema.primary().auto_id);
  EXPECT_EQ(MilvusPrimary(schema).name, "doc_id");
  ps::CollectionSchema back = ToMilvusSchema(schema);
  ASSERT_EQ(back.fields_size(), 2);  // no hidden field shows
  EXPECT_EQ(back.fields(0).name(), "doc_id");
  EXPECT_TRUE(back.fields(0).is_primary_key());
  EXPECT_FALSE(back.fields(0).autoid());
  ASSERT_OK_AND_ASSIGN(vector::CollectionSchema again, FromMilvusSchema(back, "docs"));
  EXPECT_EQ(ToMilvusSchema(again).SerializeAsString(), back.SerializeAsString());
}

TEST(MilvusSchema, DynamicFieldIsMetaJson) {
  ps::CollectionSchema s = Supported();
  s.set_enable_dynamic_field(true);
  ASSERT_OK_AND_ASSIGN(vector::CollectionSchema schema, FromMilvusSchema(s, "docs"));
  const vector::FieldSchema* meta = schema.dynamic_field();
  ASSERT_NE(meta, nullptr);
  EXPECT_EQ(meta->name, "$meta");
  EXPECT_EQ(meta->type, vector::FieldType::kJson);
  ps::CollectionSchema back = ToMilvusSchema(schema);
  EXPECT_TRUE(back.enable_dynamic_field());
  EXPECT_EQ(back.fields_size(), 6);  // $meta is not listed, as in Milvus
  ASSERT_OK_AND_ASSIGN(vector::CollectionSchema again, FromMilvusSchema(back, "docs"));
  EXPECT_EQ(ToMilvusSchema(again).SerializeAsString(), back.SerializeAsString());
  // A client that lists $meta itself (is_dynamic) gets the same collection.
  ps::FieldSchema* listed = back.add_fields();
  listed->set_name("$meta");
  listed->set_data_type(ps::JSON);
  listed->set_is_dynamic(true);
  ASSERT_OK_AND_ASSIGN(vector::CollectionSchema listed_schema, FromMilvusSchema(back, "docs"));
  EXPECT_EQ(ToMilvusSchema(listed_schema).SerializeAsString(),
            ToMilvusSchema(again).SerializeAsString());
}

TEST(MilvusSchema, UnsupportedIsRefusedByName) {
  struct Case {
    const char* what;
    std::function<void(ps::CollectionSchema*)> edit;
  };
  const Case cases[] = {
      {"Array", [](ps::CollectionSchema* s) { AddField(s, "a", ps::Array); }},
      {"BinaryVector", [](ps::CollectionSchema* s) { AddField(s, "b", ps::BinaryVector); }},
      {"nullable", [](ps::CollectionSchema* s) { AddField(s, "n2", ps::Int8)->set_nullable(true); }},
      {"partition key", [](ps::CollectionSchema* s) { s->mutable_fields(5)->set_is_partition_key(true); }},
      {"reserved", [](ps::CollectionSchema* s) { AddField(s, "__vlake_x", ps::Int64); }},
      {"reserved", [](ps::CollectionSchema* s) { AddField(s, "$meta", ps::JSON); }},
      {"dim", [](ps::CollectionSchema* s) { s->mutable_fields(1)->mutable_type_params(0)->set_value("x"); }},
      {"dim", [](ps::CollectionSchema* s) { s->mutable_fields(1)->clear_type_params(); }},
      {"max_length", [](ps::CollectionSchema* s) { s->mutable_fields(4)->mutable_type_params(0)->set_value("70000"); }},
      {"autoID on the VarChar", [](ps::CollectionSchema* s) {
         s->mutable_fields(0)->set_is_primary_key(false);
         s->mutable_fields(0)->set_autoid(false);
         s->mutable_fields(4)->set_is_primary_key(true);
         s->mutable_fields(4)->set_autoid(true);
       }},
      {"primary key", [](ps::CollectionSchema* s) {
         s->mutable_fields(0)->set_is_primary_key(false);
         s->mutable_fields(2)->set_is_primary_key(true);
       }},
      {"primary key", [](ps::CollectionSchema* s) { s->mutable_fields(0)->set_is_primary_key(false); }},
      {"differs", [](ps::CollectionSchema* s) { s->set_name("other"); }},
  };
  for (const Case& c : cases) {
    ps::CollectionSchema s = Supported();
    c.edit(&s);
    Result<vector::CollectionSchema> r = FromMilvusSchema(s, "docs");
    ASSERT_FALSE(r.ok()) << c.what;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << c.what;
    EXPECT_NE(r.status().message().find(c.what), std::string::npos) << r.status().message();
  }
}

TEST(MilvusStatus, CodesAsTheSdksReadThem) {
  const auto ok = ToMilvusStatus(Status::Ok());
  EXPECT_EQ(ok.error_code(), ::milvus::proto::common::Success);
  EXPECT_EQ(ok.code(), 0);
  EXPECT_TRUE(ok.reason().empty());
  const auto missing = ToMilvusStatus(Status(Code::kNotFound, "x"), Missing::kCollection);
  EXPECT_EQ(missing.error_code(), ::milvus::proto::common::CollectionNotExists);
  EXPECT_EQ(missing.code(), merr::kCollectionNotFound);
  EXPECT_EQ(missing.reason(), "x");
  const auto index = ToMilvusStatus(Status(Code::kNotFound, "y"), Missing::kIndex);
  EXPECT_EQ(index.error_code(), ::milvus::proto::common::IndexNotExist);
  EXPECT_EQ(index.code(), merr::kIndexNotFound);
  const auto partition =
      ToMilvusStatus(Status(Code::kNotFound, "partition not found[partition=p]"), Missing::kCollection);
  EXPECT_EQ(partition.code(), merr::kPartitionNotFound);
  const auto bad = ToMilvusStatus(Status(Code::kInvalidArgument, "z"));
  EXPECT_EQ(bad.error_code(), ::milvus::proto::common::IllegalArgument);
  EXPECT_EQ(bad.code(), merr::kParameterInvalid);
}

}  // namespace
}  // namespace vlake::milvus
