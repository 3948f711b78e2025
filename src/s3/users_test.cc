#include "s3/users.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/testing.h"

namespace vlake::s3 {
namespace {

TEST(UsersTest, ParsesUsersFile) {
  auto dir = UserDirectory::FromJson(
      R"({"users":[{"access_key":"AK1","secret_key":"secret-one","user_id":"u1","display_name":"One"},
                   {"access_key":"AK2","secret_key":"secret-two"}]})");
  ASSERT_TRUE(dir.ok()) << dir.error().ToString();
  ASSERT_NE(dir->FindByAccessKey("AK1"), nullptr);
  EXPECT_EQ(dir->FindByAccessKey("AK1")->user_id, "u1");
  EXPECT_EQ(dir->FindByAccessKey("AK2")->user_id, "AK2");  // defaults to the access key
  EXPECT_EQ(dir->FindByAccessKey("nope"), nullptr);
}

TEST(UsersTest, RejectsBadFiles) {
  for (const char* bad :
       {"", "[]", R"({"users":[]})", R"({"users":[{"access_key":"A"}]})",
        R"({"users":[{"access_key":"A","secret_key":"short"}]})",
        R"({"version":2,"users":[{"access_key":"A","secret_key":"longenough"}]})",
        R"({"users":[{"access_key":"A","secret_key":"longenough","secret":"x"}]})",
        R"({"users":[{"access_key":"A","secret_key":"longenough"},
                                       {"access_key":"A","secret_key":"longenough2"}]})"}) {
    auto dir = UserDirectory::FromJson(bad);
    EXPECT_FALSE(dir.ok()) << bad;
    if (!dir.ok()) {
      EXPECT_EQ(dir.error().code(), Code::kInvalidArgument);
    }
  }
}

TEST(UsersTest, GeneratedCredentialsPersistAndAreRandom) {
  testing::TempDir tmp;
  std::string a = tmp.path() + "/a", b = tmp.path() + "/b";
  std::filesystem::create_directories(a);
  std::filesystem::create_directories(b);
  bool created = false;
  auto first = UserDirectory::LoadOrCreateGenerated(a, &created);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(created);
  auto again = UserDirectory::LoadOrCreateGenerated(a, &created);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(created);
  EXPECT_EQ(first->users()[0].secret_key, again->users()[0].secret_key);
  auto other = UserDirectory::LoadOrCreateGenerated(b, &created);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(first->users()[0].secret_key, other->users()[0].secret_key);
  EXPECT_GE(first->users()[0].secret_key.size(), 40u);
  auto perms = std::filesystem::status(a + "/credentials.json").permissions();
  EXPECT_EQ(perms & std::filesystem::perms::others_read, std::filesystem::perms::none);
}

}  // namespace
}  // namespace vlake::s3
