// vlake's .proto files (src/milvus/proto) against the .proto files the npm SDK
// @zilliz/milvus2-sdk-node ships (installed by scripts/install-deps.sh --test): every message,
// field, enum value and RPC vlake declares must exist there with the same number, type and
// cardinality, so a drift between what vlake serves and what Milvus clients send fails CI.
#include <google/protobuf/compiler/importer.h>
#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/testing.h"
#include "milvus.pb.h"

namespace vlake::milvus {
namespace {

namespace gp = google::protobuf;

class Collector : public gp::compiler::MultiFileErrorCollector {
 public:
  void AddError(const std::string& file, int line, int, const std::string& message) override {
    errors += file + ":" + std::to_string(line) + ": " + message + "\n";
  }
  std::string errors;
};

std::string TypeOf(const gp::FieldDescriptor* f) {
  if (f->message_type() != nullptr) return f->message_type()->full_name();
  if (f->enum_type() != nullptr) return f->enum_type()->full_name();
  return f->type_name();
}

void CompareEnum(const gp::EnumDescriptor* ours, const gp::DescriptorPool& sdk) {
  const gp::EnumDescriptor* theirs = sdk.FindEnumTypeByName(ours->full_name());
  ASSERT_NE(theirs, nullptr) << "enum " << ours->full_name() << " is not in the SDK's protos";
  for (int i = 0; i < ours->value_count(); ++i) {
    const gp::EnumValueDescriptor* v = ours->value(i);
    const gp::EnumValueDescriptor* t = theirs->FindValueByName(v->name());
    ASSERT_NE(t, nullptr) << ours->full_name() << "." << v->name() << " is not in the SDK's";
    EXPECT_EQ(v->number(), t->number()) << ours->full_name() << "." << v->name();
  }
}

void CompareMessage(const gp::Descriptor* ours, const gp::DescriptorPool& sdk) {
  const gp::Descriptor* theirs = sdk.FindMessageTypeByName(ours->full_name());
  ASSERT_NE(theirs, nullptr) << "message " << ours->full_name() << " is not in the SDK's protos";
  for (int i = 0; i < ours->field_count(); ++i) {
    const gp::FieldDescriptor* f = ours->field(i);
    const gp::FieldDescriptor* t = theirs->FindFieldByName(f->name());
    ASSERT_NE(t, nullptr) << ours->full_name() << "." << f->name() << " is not in the SDK's";
    EXPECT_EQ(f->number(), t->number()) << ours->full_name() << "." << f->name();
    EXPECT_EQ(f->type(), t->type()) << ours->full_name() << "." << f->name();
    EXPECT_EQ(f->is_repeated(), t->is_repeated()) << ours->full_name() << "." << f->name();
    EXPECT_EQ(TypeOf(f), TypeOf(t)) << ours->full_name() << "." << f->name();
  }
  for (int i = 0; i < ours->nested_type_count(); ++i) CompareMessage(ours->nested_type(i), sdk);
  for (int i = 0; i < ours->enum_type_count(); ++i) CompareEnum(ours->enum_type(i), sdk);
}

TEST(MilvusProto, DeclarationsMatchTheNodeSdksProtos) {
  const std::string dir = VLAKE_SDK_PROTO_DIR;
  if (!std::filesystem::exists(dir + "/milvus.proto")) {
    VLAKE_SKIP_UNLESS_CI("the Node SDK's protos are not installed at " << dir);
  }
  gp::compiler::DiskSourceTree tree;
  tree.MapPath("", dir);
  Collector errors;
  gp::compiler::Importer importer(&tree, &errors);
  ASSERT_NE(importer.Import("milvus.proto"), nullptr) << errors.errors;
  const gp::DescriptorPool& sdk = *importer.pool();

  int messages = 0, rpcs = 0;
  // One type of each file names it (and links its generated code into this binary).
  for (const gp::FileDescriptor* file :
       {::milvus::proto::common::Status::descriptor()->file(),
        ::milvus::proto::schema::CollectionSchema::descriptor()->file(),
        ::milvus::proto::milvus::ConnectRequest::descriptor()->file()}) {
    for (int i = 0; i < file->message_type_count(); ++i, ++messages) {
      CompareMessage(file->message_type(i), sdk);
    }
    for (int i = 0; i < file->enum_type_count(); ++i) CompareEnum(file->enum_type(i), sdk);
    for (int s = 0; s < file->service_count(); ++s) {
      const gp::ServiceDescriptor* ours = file->service(s);
      const gp::ServiceDescriptor* theirs = sdk.FindServiceByName(ours->full_name());
      ASSERT_NE(theirs, nullptr) << ours->full_name();
      for (int m = 0; m < ours->method_count(); ++m, ++rpcs) {
        const gp::MethodDescriptor* o = ours->method(m);
        const gp::MethodDescriptor* t = theirs->FindMethodByName(o->name());
        ASSERT_NE(t, nullptr) << "rpc " << o->name() << " is not in the SDK's service";
        EXPECT_EQ(o->input_type()->full_name(), t->input_type()->full_name()) << o->name();
        EXPECT_EQ(o->output_type()->full_name(), t->output_type()->full_name()) << o->name();
      }
    }
  }
  EXPECT_GT(messages, 20);
  EXPECT_GT(rpcs, 5);
}

}  // namespace
}  // namespace vlake::milvus
