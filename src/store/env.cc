#include "store/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace vlake::store {
namespace {

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

  Status Append(const char* data, size_t n) override {
    while (n > 0) {
      ssize_t w = ::write(fd_.get(), data, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("write " + path_, errno);
      }
      data += w;
      n -= static_cast<size_t>(w);
      written_ += static_cast<uint64_t>(w);
    }
    // Start writeback of each completed window now, without waiting for it, so the
    // fdatasync before the commit only has the tail left to flush: a large PUT then costs about
    // max(network, disk) instead of network + disk. Advisory; errors surface at fdatasync.
    if (written_ - writeback_started_ >= kWritebackWindowBytes) {
      ::sync_file_range(fd_.get(), static_cast<off_t>(writeback_started_),
                        static_cast<off_t>(written_ - writeback_started_),
                        SYNC_FILE_RANGE_WRITE);
      writeback_started_ = written_;
    }
    return Status::Ok();
  }

  Status Sync() override {
    if (::fdatasync(fd_.get()) != 0) return ErrnoStatus("fdatasync " + path_, errno);
    return Status::Ok();
  }

  Status Close() override {
    // close(2) errors after a successful fdatasync carry no information worth failing on, but a
    // failing close without a sync may mean lost writes (NFS): report it.
    if (::close(fd_.release()) != 0) return ErrnoStatus("close " + path_, errno);
    return Status::Ok();
  }

 private:
  static constexpr uint64_t kWritebackWindowBytes = 8ull << 20;
  std::string path_;
  UniqueFd fd_;
  uint64_t written_ = 0;
  uint64_t writeback_started_ = 0;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus("create " + path, errno);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, UniqueFd(fd)));
  }

  Result<UniqueFd> OpenForRead(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open " + path, errno);
    return UniqueFd(fd);
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoStatus("rename " + from + " -> " + to, errno);
    }
    return Status::Ok();
  }

  Status Unlink(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoStatus("unlink " + path, errno);
    return Status::Ok();
  }

  Status SyncDir(const std::string& path) override {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return ErrnoStatus("open dir " + path, errno);
    if (::fsync(fd.get()) != 0) return ErrnoStatus("fsync dir " + path, errno);
    return Status::Ok();
  }

  Status CreateDirIfMissing(const std::string& path) override {
    if (::mkdir(path.c_str(), 0755) == 0) return Status::Ok();
    int err = errno;
    struct stat st;
    if (err == EEXIST && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return Status::Ok();
    }
    return ErrnoStatus("mkdir " + path, err);
  }

  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return ErrnoStatus("opendir " + path, errno);
    std::vector<std::string> names;
    for (;;) {
      errno = 0;
      struct dirent* e = ::readdir(d);
      if (e == nullptr) break;
      std::string_view name(e->d_name);
      if (name == "." || name == "..") continue;
      names.emplace_back(name);
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) return ErrnoStatus("readdir " + path, err);
    return names;
  }
};

}  // namespace

Env* Env::Default() {
  static Env* env = new PosixEnv();  // never destroyed: blob writers may outlive statics
  return env;
}

}  // namespace vlake::store
