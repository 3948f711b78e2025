// Env: the store's only door to the filesystem for blob files and folders.
//
// Everything the store does to files outside RocksDB (create, append, sync, rename, unlink,
// list, open for reading) goes through an Env, so tests can swap in one that fails a chosen
// operation or stops before a chosen step, and so the crash/recovery protocol in store.h can be
// exercised without killing processes. RocksDB keeps its own Env for <dir>/meta.
//
// Errors: OS failures come back through ErrnoStatus with the path in the message; callers rely
// on ENOENT -> kNotFound and EEXIST -> kAlreadyExists.
//
// Thread-safety: an Env is shared by every thread of a store and must be thread-safe.
// A WritableFile belongs to one thread. Ownership: Env::Default() lives for the whole process;
// an Env handed to StoreOptions must outlive the store and every BlobWriter it made.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/status.h"

namespace vlake::store {

// A file opened for appending. Unbuffered: every Append reaches write(2); callers buffer.
class WritableFile {
 public:
  virtual ~WritableFile() = default;  // closes without syncing
  virtual Status Append(const char* data, size_t n) = 0;
  // Makes the appended bytes and the file size durable (fdatasync). The directory entry is not
  // covered: sync the directory for that.
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
};

class Env {
 public:
  virtual ~Env() = default;

  // The POSIX implementation; never destroyed.
  static Env* Default();

  // Creates `path`, failing with kAlreadyExists when it is there (O_EXCL), close-on-exec.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  virtual Result<UniqueFd> OpenForRead(const std::string& path) = 0;  // kNotFound when absent
  // rename(2): atomic, replaces `to`.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status Unlink(const std::string& path) = 0;  // kNotFound when absent
  // fsync of a directory, making entries created, renamed or removed in it durable.
  virtual Status SyncDir(const std::string& path) = 0;
  virtual Status CreateDirIfMissing(const std::string& path) = 0;
  // Names in a directory, without "." and "..", in no particular order.
  virtual Result<std::vector<std::string>> ListDir(const std::string& path) = 0;
};

}  // namespace vlake::store
