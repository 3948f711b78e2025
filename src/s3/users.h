// The users the S3 surface authenticates: access key -> secret, user id, display name.
//
// Sources, first match wins (see README "Users"): a JSON users file
// {"users":[{"access_key","secret_key","user_id","display_name"}]}; else one user from
// VLAKE_ACCESS_KEY/VLAKE_SECRET_KEY; else credentials generated on first start and kept in
// <data>/credentials.json (mode 0600). There is never a fixed default secret.
//
// Thread-safety: immutable after construction; share freely.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace vlake::s3 {

struct User {
  std::string access_key;
  std::string secret_key;
  std::string user_id;
  std::string display_name;
};

class UserDirectory {
 public:
  UserDirectory() = default;
  explicit UserDirectory(std::vector<User> users);

  // Parses the users-file JSON text. kInvalidArgument with the reason when malformed
  // (missing fields, duplicate access keys, secrets shorter than 8 bytes).
  static Result<UserDirectory> FromJson(std::string_view json_text);
  static Result<UserDirectory> FromFile(const std::string& path);
  // Loads <data_dir>/credentials.json, creating it with a fresh random user when absent.
  // `*created` tells whether it was generated now.
  static Result<UserDirectory> LoadOrCreateGenerated(const std::string& data_dir, bool* created);

  const User* FindByAccessKey(std::string_view access_key) const;
  // The display name of a user id (listings show owners by it); the id itself when unknown,
  // e.g. for buckets of a user since removed from the users file.
  std::string_view DisplayNameOf(std::string_view user_id) const;
  const std::vector<User>& users() const { return users_; }

 private:
  std::vector<User> users_;
  std::map<std::string, size_t, std::less<>> by_key_;
  std::map<std::string, size_t, std::less<>> by_user_id_;  // first user with that id
};

// Writes the JSON form of `users` (the users-file format).
std::string UsersToJson(const std::vector<User>& users);

}  // namespace vlake::s3
