#include "vector/types.h"

#include <gtest/gtest.h>

#include "common/testing.h"

namespace vlake::vector {
namespace {

CollectionSchema Basic() {
  CollectionSchema s;
  s.name = "docs";
  s.fields = {{"id", FieldType::kInt64, 0, true, true},
              {"emb", FieldType::kFloatVector, 8},
              {"price", FieldType::kDouble}};
  return s;
}

TEST(Schema, ValidatesInvariants) {
  EXPECT_OK(Basic().Validate());
  CollectionSchema s = Basic();
  s.fields[1].dim = 0;
  EXPECT_CODE(s.Validate(), Code::kInvalidArgument);
  s = Basic();
  s.fields[1].dim = kMaxDim + 1;
  EXPECT_CODE(s.Validate(), Code::kInvalidArgument);
  s = Basic();
  s.fields[2].name = "id";
  EXPECT_CODE(s.Validate(), Code::kInvalidArgument);
  s = Basic();
  s.fields[0].primary_key = false;
  s.fields[0].auto_id = false;
  EXPECT_CODE(s.Validate(), Code::kInvalidArgument);
  s = Basic();
  s.name = "9bad";
  EXPECT_CODE(s.Validate(), Code::kInvalidArgument);
}

TEST(Schema, ParsesNames) {
  EXPECT_EQ(*ParseMetric("cosine"), Metric::kCosine);
  EXPECT_CODE(ParseMetric("hamming").status(), Code::kInvalidArgument);
  EXPECT_EQ(*ParseFieldType("VARCHAR"), FieldType::kVarchar);
}

}  // namespace
}  // namespace vlake::vector
