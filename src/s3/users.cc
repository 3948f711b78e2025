#include "s3/users.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/encoding.h"

namespace vlake::s3 {
namespace {

std::string RandomToken(size_t n, std::string_view alphabet) {
  std::string raw = RandomBytes(n);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    out[i] = alphabet[static_cast<unsigned char>(raw[i]) % alphabet.size()];
  }
  return out;
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoStatus("open " + path, errno);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

UserDirectory::UserDirectory(std::vector<User> users) : users_(std::move(users)) {
  for (size_t i = 0; i < users_.size(); ++i) {
    by_key_[users_[i].access_key] = i;
    by_user_id_.emplace(users_[i].user_id, i);
  }
}

Result<UserDirectory> UserDirectory::FromJson(std::string_view json_text) {
  nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("users") ||
      !doc["users"].is_array()) {
    return Error(Code::kInvalidArgument, "users file: expected {\"users\":[...]}");
  }
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    // Strict: a typo or a newer format version is an error, not something to ignore.
    if (it.key() != "users") {
      return Error(Code::kInvalidArgument, "users file: unknown key \"" + it.key() + "\"");
    }
  }
  std::vector<User> users;
  std::map<std::string, int> seen;
  for (const auto& u : doc["users"]) {
    if (!u.is_object()) return Error(Code::kInvalidArgument, "users file: entry is not an object");
    for (auto f = u.begin(); f != u.end(); ++f) {
      if (f.key() != "access_key" && f.key() != "secret_key" && f.key() != "user_id" &&
          f.key() != "display_name") {
        return Error(Code::kInvalidArgument, "users file: unknown user field \"" + f.key() + "\"");
      }
    }
    User user;
    for (auto [field, dst] :
         {std::pair{"access_key", &user.access_key}, std::pair{"secret_key", &user.secret_key},
          std::pair{"user_id", &user.user_id}, std::pair{"display_name", &user.display_name}}) {
      if (u.contains(field) && u[field].is_string()) *dst = u[field].get<std::string>();
    }
    if (user.access_key.empty() || user.secret_key.empty()) {
      return Error(Code::kInvalidArgument, "users file: access_key and secret_key are required");
    }
    if (user.secret_key.size() < 8) {
      return Error(Code::kInvalidArgument,
                   "users file: secret_key of " + user.access_key + " is shorter than 8 bytes");
    }
    if (user.user_id.empty()) user.user_id = user.access_key;
    if (user.display_name.empty()) user.display_name = user.user_id;
    if (seen[user.access_key]++) {
      return Error(Code::kInvalidArgument, "users file: duplicate access_key " + user.access_key);
    }
    users.push_back(std::move(user));
  }
  if (users.empty()) return Error(Code::kInvalidArgument, "users file: no users");
  return UserDirectory(std::move(users));
}

Result<UserDirectory> UserDirectory::FromFile(const std::string& path) {
  VLAKE_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  auto dir = FromJson(text);
  if (!dir.ok()) return Error(dir.error().code(), path + ": " + dir.error().message());
  return dir;
}

Result<UserDirectory> UserDirectory::LoadOrCreateGenerated(const std::string& data_dir,
                                                           bool* created) {
  std::string path = data_dir + "/credentials.json";
  *created = false;
  if (::access(path.c_str(), F_OK) == 0) return FromFile(path);
  User user;
  user.access_key = "VLAKE" + RandomToken(15, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
  user.secret_key =
      RandomToken(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
  user.user_id = "admin";
  user.display_name = "admin";
  std::string text = UsersToJson({user});
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("create " + tmp, errno);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok) return ErrnoStatus("write " + tmp, err);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus("rename " + path, errno);
  *created = true;
  return UserDirectory({user});
}

const User* UserDirectory::FindByAccessKey(std::string_view access_key) const {
  auto it = by_key_.find(access_key);
  return it == by_key_.end() ? nullptr : &users_[it->second];
}

std::string_view UserDirectory::DisplayNameOf(std::string_view user_id) const {
  auto it = by_user_id_.find(user_id);
  return it == by_user_id_.end() ? user_id : std::string_view(users_[it->second].display_name);
}

std::string UsersToJson(const std::vector<User>& users) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& u : users) {
    arr.push_back({{"access_key", u.access_key},
                   {"secret_key", u.secret_key},
                   {"user_id", u.user_id},
                   {"display_name", u.display_name}});
  }
  return nlohmann::json{{"users", arr}}.dump(2) + "\n";
}

}  // namespace vlake::s3
