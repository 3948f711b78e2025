// The credentials a CLI command uses, the same way for the S3 and the vector database
// commands: VLAKE_ACCESS_KEY/VLAKE_SECRET_KEY (each falling back to its AWS_* twin), else the
// first user of DATA/credentials.json (what `vlake serve` generates on first start).
#pragma once

#include <string>

#include "apps/vlake/bench_util.h"
#include "s3/users.h"

namespace vlake::app {

// False when neither source gives both keys.
inline bool CliCredentials(const std::string& data_dir, std::string* access_key,
                           std::string* secret_key) {
  EnvCredentials(access_key, secret_key);
  if (!access_key->empty() && !secret_key->empty()) return true;
  auto users = s3::UserDirectory::FromFile(data_dir + "/credentials.json");
  if (!users.ok() || users->users().empty()) return false;
  *access_key = users->users().front().access_key;
  *secret_key = users->users().front().secret_key;
  return true;
}

}  // namespace vlake::app
