#include "s3/xml.h"

#include <gtest/gtest.h>

#include "common/testing.h"

namespace vlake::s3 {
namespace {

TEST(XmlParse, CompleteMultipartUpload) {
  auto doc = ParseXml(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
      "  <Part><ETag>&quot;a54357aff0632cce46d942af68356b38&quot;</ETag>"
      "<PartNumber>1</PartNumber></Part>\n"
      "  <Part>\n    <PartNumber>2</PartNumber>\n"
      "    <ETag>\"0c78aef83f66abc1fa1e8477f296d394\"</ETag>\n"
      "    <ChecksumCRC32>AAAAAA==</ChecksumCRC32>\n  </Part>\n"
      "</CompleteMultipartUpload>\n");
  ASSERT_OK(doc);
  EXPECT_EQ(doc->name, "CompleteMultipartUpload");
  auto parts = doc->Children("Part");
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0]->Child("ETag")->text, "\"a54357aff0632cce46d942af68356b38\"");
  EXPECT_EQ(parts[0]->Child("PartNumber")->text, "1");
  EXPECT_EQ(parts[1]->Child("PartNumber")->text, "2");
  EXPECT_EQ(parts[1]->Child("ETag")->text, "\"0c78aef83f66abc1fa1e8477f296d394\"");
  EXPECT_EQ(parts[1]->Child("ChecksumCRC32")->text, "AAAAAA==");
  EXPECT_EQ(parts[1]->Child("Missing"), nullptr);
}

TEST(XmlParse, DeleteWithQuietAndAThousandObjects) {
  std::string body = "<Delete><Quiet>true</Quiet>";
  for (int i = 0; i < 1000; ++i) {
    body += "<Object><Key>dir/ key " + std::to_string(i) + " &amp; &#x1; &#233;</Key>";
    if (i % 2 == 0) body += "<VersionId>v" + std::to_string(i) + "</VersionId>";
    body += "</Object>";
  }
  body += "</Delete>";
  auto doc = ParseXml(body);
  ASSERT_OK(doc);
  EXPECT_EQ(doc->Child("Quiet")->text, "true");
  auto objects = doc->Children("Object");
  ASSERT_EQ(objects.size(), 1000u);
  EXPECT_EQ(objects[7]->Child("Key")->text, "dir/ key 7 & \x01 \xC3\xA9");
  EXPECT_EQ(objects[8]->Child("VersionId")->text, "v8");
  EXPECT_EQ(objects[7]->Child("VersionId"), nullptr);
}

TEST(XmlParse, TaggingWithPrefixesCommentsCdataAndAttributes) {
  auto doc = ParseXml(
      "\xEF\xBB\xBF<?xml version='1.0'?><!-- leading --><?pi data?>"
      "<s3:Tagging xmlns:s3='http://s3.amazonaws.com/doc/2006-03-01/' a = \"&lt;x&gt;\">"
      "<s3:TagSet><Tag><Key><![CDATA[<raw & key>]]></Key><Value>  v\r\nw  </Value></Tag>"
      "<!-- inner --><Tag><Key>k2</Key><Value/></Tag></s3:TagSet></s3:Tagging>"
      "  <!-- trailing -->\n");
  ASSERT_OK(doc);
  EXPECT_EQ(doc->name, "Tagging");
  const XmlElement* set = doc->Child("TagSet");
  ASSERT_NE(set, nullptr);
  auto tags = set->Children("Tag");
  ASSERT_EQ(tags.size(), 2u);
  EXPECT_EQ(tags[0]->Child("Key")->text, "<raw & key>");
  EXPECT_EQ(tags[0]->Child("Value")->text, "  v\nw  ");  // line ends normalised, spaces kept
  EXPECT_EQ(tags[1]->Child("Value")->text, "");
}

TEST(XmlParse, CreateBucketConfiguration) {
  auto doc = ParseXml(
      "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>");
  ASSERT_OK(doc);
  EXPECT_EQ(doc->Child("LocationConstraint")->text, "eu-west-1");
}

TEST(XmlParse, Rejections) {
  std::string deep;
  for (int i = 0; i < 65; ++i) deep += "<a>";
  for (int i = 0; i < 65; ++i) deep += "</a>";
  std::string ok_depth;
  for (int i = 0; i < 64; ++i) ok_depth += "<a>";
  for (int i = 0; i < 64; ++i) ok_depth += "</a>";
  ASSERT_OK(ParseXml(ok_depth));

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"only declaration", "<?xml version=\"1.0\"?>"},
      {"doctype", "<!DOCTYPE d [<!ENTITY x \"y\">]><d>&x;</d>"},
      {"xxe", "<!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><d>&x;</d>"},
      {"doctype inside", "<d><!DOCTYPE x></d>"},
      {"undefined entity", "<d>&x;</d>"},
      {"unterminated entity", "<d>&amp</d>"},
      {"bare ampersand", "<d>a & b</d>"},
      {"char ref zero", "<d>&#0;</d>"},
      {"char ref surrogate", "<d>&#xD800;</d>"},
      {"char ref too big", "<d>&#x110000;</d>"},
      {"char ref FFFE", "<d>&#xFFFE;</d>"},
      {"char ref garbage", "<d>&#12a;</d>"},
      {"char ref empty", "<d>&#x;</d>"},
      {"mismatched tags", "<a><b></a></b>"},
      {"mismatched prefix", "<p:a></q:a>"},
      {"unclosed", "<a><b></b>"},
      {"trailing garbage", "<a/>x"},
      {"second root", "<a/><b/>"},
      {"text before root", "x<a/>"},
      {"declaration later", "<a/><?xml version=\"1.0\"?>"},
      {"too deep", deep},
      {"attribute unquoted", "<a b=c/>"},
      {"attribute no space", "<a b='1'c='2'/>"},
      {"attribute with <", "<a b='<'/>"},
      {"unterminated comment", "<a><!-- x</a>"},
      {"unterminated cdata", "<a><![CDATA[x</a>"},
      {"control char", "<a>\x01</a>"},
      {"invalid utf8", "<a>\xC3\x28</a>"},
      {"cdata end in text", "<a>]]></a>"},
      {"empty local name", "<p:>x</p:>"},
      {"bad name", "<1a/>"},
  };
  for (const auto& [name, doc] : cases) {
    SCOPED_TRACE(name);
    auto r = ParseXml(doc);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Code::kMalformedXml) << r.error().ToString();
  }
}

TEST(XmlParse, Limits) {
  XmlLimits limits;
  limits.max_bytes = 10;
  EXPECT_FALSE(ParseXml("<a>0123456789</a>", limits).ok());
  limits = {};
  limits.max_elements = 3;
  EXPECT_TRUE(ParseXml("<a><b/><c/></a>", limits).ok());
  EXPECT_FALSE(ParseXml("<a><b/><c/><d/></a>", limits).ok());
  // The default element bound: 100000 elements pass, one more fails.
  std::string many = "<a>";
  for (int i = 0; i < 99999; ++i) many += "<b/>";
  many += "</a>";
  EXPECT_TRUE(ParseXml(many).ok());
  many.insert(3, "<b/>");
  EXPECT_FALSE(ParseXml(many).ok());
}

TEST(XmlWriter, DocumentShape) {
  XmlWriter w("ListAllMyBucketsResult");
  w.Open("Owner");
  w.Element("ID", "owner-id");
  w.Close();
  w.Open("Buckets");
  w.Open("Bucket");
  w.Element("Name", "b1");
  w.ElementInt("Size", -42);
  w.ElementBool("IsTruncated", false);
  // Finish closes Bucket, Buckets and the root.
  EXPECT_EQ(w.Finish(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            "<Owner><ID>owner-id</ID></Owner><Buckets><Bucket><Name>b1</Name><Size>-42</Size>"
            "<IsTruncated>false</IsTruncated></Bucket></Buckets></ListAllMyBucketsResult>");
  XmlWriter bare("Error", "");
  bare.Element("Code", "NoSuchKey");
  EXPECT_EQ(bare.Finish(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code></Error>");
}

TEST(XmlWriter, EscapingRoundTripsThroughTheParser) {
  std::string every_byte;
  for (int c = 1; c < 128; ++c) every_byte += static_cast<char>(c);
  every_byte += "\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 'quoted' \"double\" <tag> & ]]>";
  XmlWriter w("ListBucketResult");
  w.Open("Contents");
  w.Element("Key", every_byte);
  w.Close();
  w.Element("Prefix", "");
  std::string doc = w.Finish();
  EXPECT_NE(doc.find("&#13;&#xE;"), std::string::npos) << doc;
  EXPECT_NE(doc.find("&#x1;&#x2;"), std::string::npos) << doc;
  EXPECT_NE(doc.find("&lt;tag&gt; &amp; ]]&gt;"), std::string::npos) << doc;
  auto parsed = ParseXml(doc);
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->Child("Contents")->Child("Key")->text, every_byte);
  EXPECT_EQ(parsed->Child("Prefix")->text, "");
}

}  // namespace
}  // namespace vlake::s3
