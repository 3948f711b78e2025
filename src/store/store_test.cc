#include "store/store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "common/encoding.h"
#include "common/hash.h"
#include "store/codec.h"
#include "store/env.h"
#include "store/test_util.h"

namespace vlake::store {
namespace {

namespace fs = std::filesystem;
using testing::RandomData;
using testing::TempDir;

// Forwards to the POSIX Env, failing the operations a test switches on.
class FaultEnv final : public Env {
 public:
  std::atomic<bool> fail_rename{false};
  std::atomic<bool> fail_unlink{false};
  std::atomic<bool> fail_sync{false};
  std::atomic<bool> fail_sync_dir{false};

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    VLAKE_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> f, base_->NewWritableFile(path));
    return std::unique_ptr<WritableFile>(new File(this, std::move(f)));
  }
  Result<UniqueFd> OpenForRead(const std::string& path) override {
    return base_->OpenForRead(path);
  }
  Status Rename(const std::string& from, const std::string& to) override {
    if (fail_rename) return Error(Code::kIoError, "injected rename failure");
    return base_->Rename(from, to);
  }
  Status Unlink(const std::string& path) override {
    if (fail_unlink) return Error(Code::kIoError, "injected unlink failure");
    return base_->Unlink(path);
  }
  Status SyncDir(const std::string& path) override {
    if (fail_sync_dir) return Error(Code::kIoError, "injected directory fsync failure");
    return base_->SyncDir(path);
  }
  Status CreateDirIfMissing(const std::string& path) override {
    return base_->CreateDirIfMissing(path);
  }
  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    return base_->ListDir(path);
  }

 private:
  class File final : public WritableFile {
   public:
    File(FaultEnv* env, std::unique_ptr<WritableFile> f) : env_(env), f_(std::move(f)) {}
    Status Append(const char* data, size_t n) override { return f_->Append(data, n); }
    Status Sync() override {
      if (env_->fail_sync) return Error(Code::kIoError, "injected fdatasync failure");
      return f_->Sync();
    }
    Status Close() override { return f_->Close(); }

   private:
    FaultEnv* env_;
    std::unique_ptr<WritableFile> f_;
  };

  Env* base_ = Env::Default();
};

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = tmp_.path() + "/data";
    Reopen();
  }

  void Reopen(StoreOptions options = {}) {
    store_.reset();
    Result<std::unique_ptr<Store>> s = Store::Open(data_dir_, options);
    ASSERT_OK(s);
    store_ = std::move(*s);
  }

  std::unique_ptr<BlobWriter> Blob(std::string_view data, size_t chunk = 7777) {
    Result<std::unique_ptr<BlobWriter>> w = store_->NewBlob();
    EXPECT_OK(w);
    for (size_t off = 0; off < data.size(); off += chunk) {
      size_t n = std::min(chunk, data.size() - off);
      EXPECT_OK((*w)->Append(data.data() + off, n));
    }
    return std::move(*w);
  }

  Result<ObjectMeta> Put(const std::string& bucket, const std::string& key, std::string_view data,
                         const WriteConditions& conditions = {}) {
    ObjectMeta meta;
    meta.etag = HexEncode(Md5Digest(data));
    meta.owner_id = "owner";
    return store_->PutObject(bucket, key, Blob(data), std::move(meta), conditions);
  }

  static std::string ReadHandle(const ObjectHandle& h) {
    std::string out;
    for (const OpenExtent& e : h.extents) {
      std::string buf(e.size, '\0');
      size_t got = 0;
      while (got < e.size) {
        ssize_t r = ::pread(e.fd->get(), buf.data() + got, e.size - got, static_cast<off_t>(got));
        if (r <= 0) return "<short read>";
        got += static_cast<size_t>(r);
      }
      out += buf;
    }
    return out;
  }

  std::string Read(const std::string& bucket, const std::string& key) {
    Result<ObjectHandle> h = store_->OpenObject(bucket, key);
    if (!h) return "<" + h.error().ToString() + ">";
    return ReadHandle(*h);
  }

  size_t CountFiles(const std::string& sub) {
    size_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(data_dir_ + "/" + sub)) {
      if (e.is_regular_file()) ++n;
    }
    return n;
  }

  // Opens the metadata database directly (the store must be closed).
  std::unique_ptr<rocksdb::DB> RawDb() {
    rocksdb::DB* db = nullptr;
    rocksdb::Options o;
    rocksdb::Status s = rocksdb::DB::Open(o, data_dir_ + "/meta", &db);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return std::unique_ptr<rocksdb::DB>(db);
  }

  size_t CountRecords(const std::string& prefix) {
    std::unique_ptr<rocksdb::DB> db = RawDb();
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    size_t n = 0;
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) ++n;
    return n;
  }

  TempDir tmp_;
  std::string data_dir_;
  std::unique_ptr<Store> store_;
};

// ---- Buckets ----

TEST_F(StoreTest, BucketLifecycle) {
  ASSERT_OK(store_->CreateBucket("beta", "alice"));
  ASSERT_OK(store_->CreateBucket("alpha", "alice"));
  EXPECT_CODE(store_->CreateBucket("beta", "alice"), Code::kBucketAlreadyOwnedByYou);
  EXPECT_CODE(store_->CreateBucket("beta", "bob"), Code::kBucketAlreadyExists);
  Result<BucketInfo> info = store_->GetBucket("beta");
  ASSERT_OK(info);
  EXPECT_EQ(info->name, "beta");
  EXPECT_EQ(info->owner_id, "alice");
  EXPECT_GT(info->created_unix_ms, 0);
  EXPECT_CODE(store_->GetBucket("gamma"), Code::kNoSuchBucket);

  Reopen();  // buckets are durable
  Result<std::vector<BucketInfo>> all = store_->ListBuckets();
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "alpha");
  EXPECT_EQ((*all)[1].name, "beta");

  ASSERT_OK(Put("beta", "k", "v"));
  EXPECT_CODE(store_->DeleteBucket("beta"), Code::kBucketNotEmpty);
  ASSERT_OK(store_->DeleteObject("beta", "k"));
  ASSERT_OK(store_->DeleteBucket("beta"));
  EXPECT_CODE(store_->GetBucket("beta"), Code::kNoSuchBucket);
  EXPECT_CODE(store_->DeleteBucket("beta"), Code::kNoSuchBucket);
  EXPECT_CODE(Put("beta", "k", "v"), Code::kNoSuchBucket);
  EXPECT_CODE(store_->HeadObject("beta", "k"), Code::kNoSuchBucket);
  EXPECT_CODE(store_->DeleteObject("beta", "k"), Code::kNoSuchBucket);
  EXPECT_CODE(store_->ListObjects("beta", {}), Code::kNoSuchBucket);
  EXPECT_CODE(store_->CreateMultipartUpload("beta", "k", {}), Code::kNoSuchBucket);
  EXPECT_EQ(CountFiles("blobs"), 0u);
}

TEST_F(StoreTest, BucketChangesOwnerDurably) {
  ASSERT_OK(store_->CreateBucket("b", "alice"));
  ASSERT_OK(Put("b", "k", "v"));
  ASSERT_OK(store_->SetBucketOwner("b", "internal"));
  EXPECT_EQ(store_->GetBucket("b")->owner_id, "internal");
  EXPECT_CODE(store_->CreateBucket("b", "internal"), Code::kBucketAlreadyOwnedByYou);
  EXPECT_CODE(store_->SetBucketOwner("nope", "x"), Code::kNoSuchBucket);
  Reopen();
  EXPECT_EQ(store_->GetBucket("b")->owner_id, "internal");
  EXPECT_OK(store_->HeadObject("b", "k"));  // objects stay
}

TEST_F(StoreTest, SecondOpenOfTheSameFolderFails) {
  Result<std::unique_ptr<Store>> second = Store::Open(data_dir_, {});
  EXPECT_CODE(second, Code::kIoError);
}

TEST_F(StoreTest, OpenFailsCleanlyOnAFileInTheWay) {
  std::string path = tmp_.path() + "/file";
  std::FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_TRUE(f != nullptr);
  std::fclose(f);
  EXPECT_CODE(Store::Open(path, {}), Code::kIoError);
}

// ---- Objects ----

TEST_F(StoreTest, PutGetOverwriteDeleteByteExact) {
  ASSERT_OK(store_->CreateBucket("b", "owner"));
  for (size_t size : {size_t{0}, size_t{1}, size_t{(1 << 20) + 3}}) {
    std::string data = RandomData(size, size);
    ObjectMeta meta;
    meta.etag = HexEncode(Md5Digest(data));
    meta.owner_id = "owner";
    meta.headers = {{"content-type", "application/x-test"}, {"x-amz-meta-n", "1"}};
    meta.tags = {{"t", "v"}};
    meta.checksum = ChecksumValue{ChecksumAlgorithm::kCrc32c, ChecksumType::kFullObject,
                                  Base64Encode(ComputeChecksum(ChecksumAlgorithm::kCrc32c, data))};
    Result<ObjectMeta> put = store_->PutObject("b", "key", Blob(data), meta, {});
    ASSERT_OK(put);
    EXPECT_EQ(put->size, size);
    ASSERT_EQ(put->extents.size(), 1u);
    EXPECT_TRUE(codec::IsBlobId(put->extents[0].blob_id));

    Result<ObjectMeta> head = store_->HeadObject("b", "key");
    ASSERT_OK(head);
    EXPECT_EQ(head->size, size);
    EXPECT_EQ(head->etag, meta.etag);
    EXPECT_EQ(head->headers, meta.headers);
    EXPECT_EQ(head->tags, meta.tags);
    ASSERT_TRUE(head->checksum.has_value());
    EXPECT_EQ(head->checksum->value, meta.checksum->value);
    EXPECT_GT(head->mtime_unix_ms, 0);
    EXPECT_EQ(Read("b", "key"), data) << size;
    // One blob per object version: the overwritten one is gone.
    EXPECT_EQ(CountFiles("blobs"), 1u);
    EXPECT_EQ(CountFiles("tmp"), 0u);
  }
  // A large append takes the unbuffered path; mixing both must keep the byte order.
  std::string big = RandomData(3 << 20, 99);
  Result<std::unique_ptr<BlobWriter>> w = store_->NewBlob();
  ASSERT_OK(w);
  ASSERT_OK((*w)->Append(big.data(), 10));
  ASSERT_OK((*w)->Append(big.data() + 10, (2 << 20)));
  ASSERT_OK((*w)->Append(big.data() + 10 + (2 << 20), big.size() - 10 - (2 << 20)));
  ASSERT_OK(store_->PutObject("b", "big", std::move(*w), {}, {}));
  EXPECT_EQ(Read("b", "big"), big);

  Reopen();
  EXPECT_EQ(Read("b", "big"), big);
  ASSERT_OK(store_->DeleteObject("b", "key"));
  ASSERT_OK(store_->DeleteObject("b", "key"));  // absent: still OK
  EXPECT_CODE(store_->HeadObject("b", "key"), Code::kNoSuchKey);
  EXPECT_CODE(store_->OpenObject("b", "key"), Code::kNoSuchKey);
  EXPECT_EQ(CountFiles("blobs"), 1u);
}

TEST_F(StoreTest, AbandonedBlobWriterLeavesNothing) {
  ASSERT_OK(store_->CreateBucket("b", "o"));
  { std::unique_ptr<BlobWriter> w = Blob("partial"); }
  EXPECT_EQ(CountFiles("tmp"), 0u);
  // A failed precondition drops the new blob too.
  ASSERT_OK(Put("b", "k", "one"));
  WriteConditions c;
  c.if_none_match_star = true;
  EXPECT_CODE(Put("b", "k", "two", c), Code::kPreconditionFailed);
  EXPECT_EQ(CountFiles("tmp"), 0u);
  EXPECT_EQ(CountFiles("blobs"), 1u);
}

TEST_F(StoreTest, RejectsForeignBlobsAndBadKeys) {
  ASSERT_OK(store_->CreateBucket("b", "o"));
  TempDir other_dir;
  Result<std::unique_ptr<Store>> other = Store::Open(other_dir.path(), {});
  ASSERT_OK(other);
  Result<std::unique_ptr<BlobWriter>> foreign = (*other)->NewBlob();
  ASSERT_OK(foreign);
  EXPECT_CODE(store_->PutObject("b", "k", std::move(*foreign), {}, {}), Code::kInvalidArgument);
  EXPECT_CODE(store_->PutObject("b", "", Blob("x"), {}, {}), Code::kInvalidArgument);
  EXPECT_CODE(store_->PutObject("b", std::string(kMaxKeyBytes + 1, 'k'), Blob("x"), {}, {}),
              Code::kKeyTooLong);
  EXPECT_EQ(CountFiles("tmp"), 0u);
}

TEST_F(StoreTest, WriteConditions) {
  ASSERT_OK(store_->CreateBucket("b", "o"));
  WriteConditions none_match;
  none_match.if_none_match_star = true;
  ASSERT_OK(Put("b", "k", "v1", none_match));  // absent: allowed
  EXPECT_CODE(Put("b", "k", "v2", none_match), Code::kPreconditionFailed);
  EXPECT_EQ(Read("b", "k"), "v1");

  WriteConditions match;
  match.if_match = HexEncode(Md5Digest("v1"));
  ASSERT_OK(Put("b", "k", "v2", match));
  EXPECT_EQ(Read("b", "k"), "v2");
  EXPECT_CODE(Put("b", "k", "v3", match), Code::kPreconditionFailed);  // etag is now v2's
  match.if_match = "\"" + HexEncode(Md5Digest("v2")) + "\"";           // quoted also accepted
  ASSERT_OK(Put("b", "k", "v3", match));
  match.if_match = "*";
  ASSERT_OK(Put("b", "k", "v4", match));
  EXPECT_CODE(Put("b", "absent", "x", match), Code::kNoSuchKey);
  match.if_match = HexEncode(Md5Digest("v1"));
  EXPECT_CODE(Put("b", "absent", "x", match), Code::kNoSuchKey);
  EXPECT_EQ(Read("b", "k"), "v4");
  EXPECT_EQ(CountFiles("blobs"), 1u);
  EXPECT_EQ(CountFiles("tmp"), 0u);
}

TEST_F(StoreTest, SetObjectTags) {
  ASSERT_OK(store_->CreateBucket("b", "o"));
  ASSERT_OK(Put("b", "k", "data"));
  ASSERT_OK(store_->SetObjectTags("b", "k", {{"a", "1"}, {"b", "2"}}));
  Result<ObjectMeta> head = store_->HeadObject("b", "k");
  ASSERT_OK(head);
  EXPECT_EQ(head->tags, (KeyValues{{"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(Read("b", "k"), "data");
  EXPECT_CODE(store_->SetObjectTags("b", "nope", {}), Code::kNoSuchKey);
  EXPECT_CODE(store_->SetObjectTags("nob", "k", {}), Code::kNoSuchBucket);
}

// ---- Listing ----

// The S3 listing rules, written the slow and obvious way, as the oracle.
ListResult ReferenceList(const std::set<std::string>& keys, const ListOptions& o) {
  ListResult out;
  int count = 0;
  std::string last;
  std::set<std::string> seen_prefixes;
  for (const std::string& k : keys) {
    if (!k.starts_with(o.prefix) || k <= o.start_after) continue;
    std::string entry = k;
    bool is_prefix = false;
    if (!o.delimiter.empty()) {
      size_t pos = k.find(o.delimiter, o.prefix.size());
      if (pos != std::string::npos) {
        entry = k.substr(0, pos + o.delimiter.size());
        is_prefix = true;
        if (entry <= o.start_after || seen_prefixes.count(entry)) continue;
      }
    }
    if (count == o.max_keys) {
      out.truncated = true;
      break;
    }
    if (is_prefix) {
      seen_prefixes.insert(entry);
      out.common_prefixes.push_back(entry);
    } else {
      out.objects.push_back(ListEntry{k, {}});
    }
    last = entry;
    ++count;
  }
  if (out.truncated) out.next_marker = last;
  return out;
}

std::vector<std::string> Keys(const ListResult& r) {
  std::vector<std::string> out;
  for (const ListEntry& e : r.objects) out.push_back(e.key);
  return out;
}

// Nothing but meta/, blobs/xx/<id> and tmp/ exists under the data folder, and nothing else
// beside it: no key ever became a path.
void ExpectOnlyStoreFiles(const std::string& parent, const std::string& data_dir) {
  for (const auto& e : fs::directory_iterator(parent)) {
    EXPECT_EQ(e.path().string(), data_dir) << "unexpected entry beside the data folder";
  }
  for (const auto& e : fs::directory_iterator(data_dir)) {
    std::string name = e.path().filename().string();
    EXPECT_TRUE(name == "meta" || name == "blobs" || name == "tmp") << name;
  }
  for (const auto& e : fs::recursive_directory_iterator(data_dir + "/blobs")) {
    std::string rel = fs::relative(e.path(), data_dir + "/blobs").string();
    if (e.is_directory()) {
      EXPECT_EQ(rel.size(), 2u) << rel;
    } else {
      EXPECT_EQ(rel.size(), 35u) << rel;  // xx/<32 hex>
      EXPECT_TRUE(codec::IsBlobId(rel.substr(3))) << rel;
    }
  }
}

TEST_F(StoreTest, ListObjectsMatchesS3Semantics) {
  ASSERT_OK(store_->CreateBucket("b", "o"));
  ASSERT_OK(store_->CreateBucket("b2", "o"));  // a neighbour bucket must not bleed in
  ASSERT_OK(Put("b2", "a/zzz", "x"));
  std::set<std::string> keys = {"a/b",
                                "a//b",
                                "/lead",
                                "../x",
                                "\x01"
                                "ctl",
                                "\xc3\xa9",
                                "a",
                                "a/",
                                "a/b/c",
                                "a/c",
                                "ab",
                                "b/../c",
                                "z",
                                "\x7f",
                                "~",
                                "a-b",
                                "a.b",
                                "dir/"};
  for (int i = 0; i < 300; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "dir%d/file%03d", i % 7, i);
    keys.insert(buf);
    std::snprintf(buf, sizeof(buf), "flat%03d", i);
    if (i % 3 == 0) keys.insert(buf);
  }
  for (const std::string& k : keys) ASSERT_OK(Put("b", k, k));

  // The exact order of the awkward keys: raw UTF-8 byte order.
  ListOptions all;
  all.max_keys = 100000;
  Result<ListResult> full = store_->ListObjects("b", all);
  ASSERT_OK(full);
  EXPECT_EQ(Keys(*full), std::vector<std::string>(keys.begin(), keys.end()));
  EXPECT_EQ(Keys(*full).front(),
            "\x01"
            "ctl");
  EXPECT_EQ(Keys(*full).back(), "\xc3\xa9");
  EXPECT_FALSE(full->truncated);
  EXPECT_EQ(full->objects[0].meta.size, 4u);
  EXPECT_TRUE(full->objects[0].meta.extents.empty());

  ListOptions slash;
  slash.delimiter = "/";
  slash.max_keys = 1000;
  Result<ListResult> top = store_->ListObjects("b", slash);
  ASSERT_OK(top);
  EXPECT_EQ(top->common_prefixes,
            (std::vector<std::string>{"../", "/", "a/", "b/", "dir/", "dir0/", "dir1/", "dir2/",
                                      "dir3/", "dir4/", "dir5/", "dir6/"}));

  // Every combination against the oracle, each paginated to the end.
  for (std::string prefix : {"", "a", "a/", "dir", "dir3/", "flat", "nope", "\xc3"}) {
    for (std::string delimiter : {"", "/", "//", "e", "3/"}) {
      for (std::string start_after : {"", "a/b", "dir2/", "dir2/file100", "flat150", "\xff"}) {
        for (int max_keys : {1, 7, 1000}) {
          ListOptions o{prefix, delimiter, start_after, max_keys};
          std::vector<std::string> got_keys, want_keys, got_prefixes, want_prefixes;
          ListOptions page = o;
          for (int pages = 0; pages < 1000; ++pages) {
            Result<ListResult> got = store_->ListObjects("b", page);
            ASSERT_OK(got);
            ListResult want = ReferenceList(keys, page);
            ASSERT_EQ(Keys(*got), Keys(want)) << prefix << "|" << delimiter << "|" << start_after;
            ASSERT_EQ(got->common_prefixes, want.common_prefixes);
            ASSERT_EQ(got->truncated, want.truncated);
            ASSERT_EQ(got->next_marker, want.next_marker);
            if (!got->truncated) break;
            page.start_after = got->next_marker;
          }
        }
      }
    }
  }
  ListOptions zero;
  zero.max_keys = 0;
  Result<ListResult> none = store_->ListObjects("b", zero);
  ASSERT_OK(none);
  EXPECT_TRUE(none->objects.empty());
  EXPECT_FALSE(none->truncated);

  for (const std::string& k : keys) EXPECT_EQ(Read("b", k), k);
  ExpectOnlyStoreFiles(tmp_.path(), data_dir_);
}

TEST_F(StoreTest, KeysWithNulBytes) {
  ASSERT_OK(store_->CreateBucket("b", "o"));
  std::vector<std::string> keys = {std::string("a\0", 2), std::string("a\0b", 3), "a",
                                   std::string("a\x01", 2)};
  for (const std::string& k : keys) ASSERT_OK(Put("b", k, k));
  ListOptions o;
  o.prefix = std::string("a\0", 2);
  Result<ListResult> r = store_->ListObjects("b", o);
  ASSERT_OK(r);
  EXPECT_EQ(Keys(*r), (std::vector<std::string>{std::string("a\0", 2), std::string("a\0b", 3)}));
  for (const std::string& k : keys) EXPECT_EQ(Read("b", k), k);
}

TEST_F(StoreTest, DelimiterListingSkipsLargeGroups) {
  Reopen(StoreOptions{.sync = false});
  ASSERT_OK(store_->CreateBucket("b", "o"));
  constexpr int kInGroup = 20000;
  for (int i = 0; i < kInGroup; ++i) ASSERT_OK(Put("b", "big/" + std::to_string(i), ""));
  ASSERT_OK(Put("b", "after", ""));
  ASSERT_OK(Put("b", "before", ""));
  auto micros_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                 t)
        .count();
  };
  ListOptions flat;
  flat.max_keys = 100000;
  auto start = std::chrono::steady_clock::now();
  Result<ListResult> all = store_->ListObjects("b", flat);
  ASSERT_OK(all);
  ASSERT_EQ(all->objects.size(), static_cast<size_t>(kInGroup + 2));
  int64_t flat_us = micros_since(start);

  ListOptions grouped;
  grouped.delimiter = "/";
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    Result<ListResult> r = store_->ListObjects("b", grouped);
    ASSERT_OK(r);
    ASSERT_EQ(r->common_prefixes, std::vector<std::string>{"big/"});
    ASSERT_EQ(Keys(*r), (std::vector<std::string>{"after", "before"}));
  }
  // Seeking past the group costs a few iterator steps; walking it would make 20 grouped
  // listings cost about 20 flat ones.
  int64_t grouped_us = micros_since(start);
  EXPECT_LT(grouped_us, flat_us) << "grouped x20 " << grouped_us << "us, flat " << flat_us << "us";
}

// ---- Multipart ----

class MultipartTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    ASSERT_OK(store_->CreateBucket("b", "o"));
  }

  std::string Create(std::optional<ChecksumValue> checksum = std::nullopt) {
    ObjectMeta meta;
    meta.owner_id = "o";
    meta.headers = {{"content-type", "video/mp4"}};
    meta.checksum = std::move(checksum);
    Result<std::string> id = store_->CreateMultipartUpload("b", "mp", meta);
    EXPECT_OK(id);
    return id ? *id : "";
  }

  Result<PartInfo> Part(const std::string& id, int n, std::string_view data,
                        std::optional<ChecksumAlgorithm> alg = std::nullopt) {
    std::optional<ChecksumValue> c;
    if (alg) {
      c = ChecksumValue{*alg, ChecksumType::kFullObject, Base64Encode(ComputeChecksum(*alg, data))};
    }
    return store_->PutPart("b", "mp", id, n, Blob(data), HexEncode(Md5Digest(data)), c);
  }

  static CompletedPart Listed(int n, std::string_view data) {
    return CompletedPart{n, HexEncode(Md5Digest(data)), std::nullopt};
  }
};

TEST_F(MultipartTest, CompleteJoinsPartsWithoutCopying) {
  std::string id = Create();
  ASSERT_EQ(id.size(), 44u);
  std::string p1 = RandomData(kMinPartSize, 1), p2 = RandomData(kMinPartSize + 5, 2),
              p3 = RandomData(17, 3), unused = RandomData(100, 4);
  ASSERT_OK(Part(id, 1, p1));
  ASSERT_OK(Part(id, 3, p2));
  ASSERT_OK(Part(id, 4, unused));
  ASSERT_OK(Part(id, 7, p3));
  Result<ObjectMeta> meta = store_->CompleteMultipartUpload(
      "b", "mp", id, {Listed(1, p1), Listed(3, p2), Listed(7, p3)}, {});
  ASSERT_OK(meta);
  // Independent ETag: md5 over the raw md5s, "-3".
  std::string expected = HexEncode(Md5Digest(Md5Digest(p1) + Md5Digest(p2) + Md5Digest(p3))) + "-3";
  EXPECT_EQ(meta->etag, expected);
  EXPECT_EQ(meta->size, p1.size() + p2.size() + p3.size());
  ASSERT_EQ(meta->parts.size(), 3u);
  EXPECT_EQ(meta->parts[1].size, p2.size());
  EXPECT_EQ(meta->parts[1].etag, HexEncode(Md5Digest(p2)));
  EXPECT_EQ(meta->extents.size(), 3u);
  EXPECT_EQ(meta->headers, (KeyValues{{"content-type", "video/mp4"}}));
  EXPECT_FALSE(meta->checksum.has_value());

  Reopen();
  Result<ObjectMeta> head = store_->HeadObject("b", "mp");
  ASSERT_OK(head);
  EXPECT_EQ(head->etag, expected);
  EXPECT_EQ(Read("b", "mp"), p1 + p2 + p3);
  // The unlisted part is gone, the upload and its parts too.
  EXPECT_EQ(CountFiles("blobs"), 3u);
  EXPECT_CODE(store_->GetUpload("b", "mp", id), Code::kNoSuchUpload);
  EXPECT_CODE(store_->ListParts("b", "mp", id, 0, 100), Code::kNoSuchUpload);
  EXPECT_CODE(Part(id, 9, "late"), Code::kNoSuchUpload);
  EXPECT_CODE(store_->CompleteMultipartUpload("b", "mp", id, {Listed(1, p1)}, {}),
              Code::kNoSuchUpload);
  EXPECT_EQ(CountFiles("tmp"), 0u);

  // Overwriting the multipart object retires all three blobs.
  ASSERT_OK(Put("b", "mp", "small"));
  EXPECT_EQ(CountFiles("blobs"), 1u);
}

TEST_F(MultipartTest, ValidationErrors) {
  std::string id = Create();
  std::string small = "tiny", big = RandomData(kMinPartSize, 5);
  ASSERT_OK(Part(id, 1, small));
  ASSERT_OK(Part(id, 2, big));
  EXPECT_CODE(store_->CompleteMultipartUpload("b", "mp", id, {}, {}), Code::kInvalidRequest);
  EXPECT_CODE(
      store_->CompleteMultipartUpload("b", "mp", id, {Listed(2, big), Listed(1, small)}, {}),
      Code::kInvalidPartOrder);
  EXPECT_CODE(
      store_->CompleteMultipartUpload("b", "mp", id, {Listed(1, small), Listed(1, small)}, {}),
      Code::kInvalidPartOrder);
  EXPECT_CODE(
      store_->CompleteMultipartUpload("b", "mp", id, {Listed(1, small), Listed(2, big)}, {}),
      Code::kEntityTooSmall);
  EXPECT_CODE(store_->CompleteMultipartUpload("b", "mp", id, {Listed(2, big), Listed(3, big)}, {}),
              Code::kInvalidPart);  // never uploaded
  EXPECT_CODE(store_->CompleteMultipartUpload("b", "mp", id, {Listed(2, small)}, {}),
              Code::kInvalidPart);  // etag mismatch
  CompletedPart bad_checksum = Listed(2, big);
  bad_checksum.checksum = "AAAAAA==";
  EXPECT_CODE(store_->CompleteMultipartUpload("b", "mp", id, {bad_checksum}, {}),
              Code::kInvalidPart);
  EXPECT_CODE(Part(id, 0, "x"), Code::kInvalidArgument);
  EXPECT_CODE(Part(id, kMaxPartNumber + 1, "x"), Code::kInvalidArgument);
  EXPECT_CODE(store_->CompleteMultipartUpload("b", "mp", "nonsense", {Listed(1, small)}, {}),
              Code::kNoSuchUpload);
  EXPECT_CODE(store_->CompleteMultipartUpload("b", "other", id, {Listed(1, small)}, {}),
              Code::kNoSuchUpload);  // the id belongs to another key
  EXPECT_CODE(store_->CompleteMultipartUpload("nob", "mp", id, {Listed(1, small)}, {}),
              Code::kNoSuchBucket);

  // The last part may be small; and conditions apply as for PutObject.
  ASSERT_OK(Put("b", "mp", "existing"));
  WriteConditions c;
  c.if_none_match_star = true;
  EXPECT_CODE(store_->CompleteMultipartUpload("b", "mp", id, {Listed(2, big), Listed(3, small)}, c),
              Code::kInvalidPart);
  EXPECT_CODE(store_->CompleteMultipartUpload("b", "mp", id, {Listed(2, big)}, c),
              Code::kPreconditionFailed);
  Result<ObjectMeta> done = store_->CompleteMultipartUpload("b", "mp", id, {Listed(2, big)}, {});
  ASSERT_OK(done);
  EXPECT_EQ(Read("b", "mp"), big);
  EXPECT_EQ(CountFiles("blobs"), 1u);  // part 1 and the replaced object are gone
}

TEST_F(MultipartTest, PartReplacementAndListing) {
  std::string id = Create();
  ASSERT_OK(Part(id, 2, "first"));
  ASSERT_OK(Part(id, 2, "second"));
  for (int n : {1, 3, 4, 5, 10, 300}) ASSERT_OK(Part(id, n, "p" + std::to_string(n)));
  EXPECT_EQ(CountFiles("blobs"), 7u);  // the replaced part's blob is gone

  Result<ListPartsResult> page = store_->ListParts("b", "mp", id, 0, 3);
  ASSERT_OK(page);
  ASSERT_EQ(page->parts.size(), 3u);
  EXPECT_EQ(page->parts[0].part_number, 1);
  EXPECT_EQ(page->parts[1].part_number, 2);
  EXPECT_EQ(page->parts[1].etag, HexEncode(Md5Digest("second")));
  EXPECT_EQ(page->parts[1].size, 6u);
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_part_number_marker, 3);
  page = store_->ListParts("b", "mp", id, 3, 3);
  ASSERT_OK(page);
  ASSERT_EQ(page->parts.size(), 3u);
  EXPECT_EQ(page->parts[0].part_number, 4);
  EXPECT_EQ(page->parts[2].part_number, 10);
  EXPECT_TRUE(page->truncated);
  page = store_->ListParts("b", "mp", id, 10, 3);
  ASSERT_OK(page);
  ASSERT_EQ(page->parts.size(), 1u);
  EXPECT_EQ(page->parts[0].part_number, 300);
  EXPECT_FALSE(page->truncated);

  ASSERT_OK(store_->AbortMultipartUpload("b", "mp", id));
  EXPECT_CODE(store_->AbortMultipartUpload("b", "mp", id), Code::kNoSuchUpload);
  EXPECT_CODE(Part(id, 1, "x"), Code::kNoSuchUpload);
  EXPECT_EQ(CountFiles("blobs"), 0u);
  EXPECT_EQ(CountFiles("tmp"), 0u);
}

TEST_F(MultipartTest, ListUploads) {
  // Two uploads of one key sort by initiation (ids start with the time).
  std::vector<std::pair<std::string, std::string>> made;  // key, id
  for (std::string key : {"x/1", "a", "x/2", "a", "x/2/deep", "y", "x/1"}) {
    Result<std::string> id = store_->CreateMultipartUpload("b", key, {});
    ASSERT_OK(id);
    made.emplace_back(key, *id);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::sort(made.begin(), made.end());
  ListUploadsOptions all;
  Result<ListUploadsResult> r = store_->ListMultipartUploads("b", all);
  ASSERT_OK(r);
  ASSERT_EQ(r->uploads.size(), made.size());
  for (size_t i = 0; i < made.size(); ++i) {
    EXPECT_EQ(r->uploads[i].key, made[i].first);
    EXPECT_EQ(r->uploads[i].upload_id, made[i].second);
    EXPECT_EQ(r->uploads[i].bucket, "b");
  }
  EXPECT_LT(r->uploads[0].initiated_unix_ms, r->uploads[1].initiated_unix_ms);

  ListUploadsOptions grouped;
  grouped.delimiter = "/";
  r = store_->ListMultipartUploads("b", grouped);
  ASSERT_OK(r);
  EXPECT_EQ(r->common_prefixes, std::vector<std::string>{"x/"});
  ASSERT_EQ(r->uploads.size(), 3u);  // a, a, y

  ListUploadsOptions under;
  under.prefix = "x/";
  under.delimiter = "/";
  r = store_->ListMultipartUploads("b", under);
  ASSERT_OK(r);
  EXPECT_EQ(r->common_prefixes, std::vector<std::string>{"x/2/"});
  ASSERT_EQ(r->uploads.size(), 3u);  // x/1 x2, x/2

  // Pagination by (key, upload id) markers visits everything once.
  ListUploadsOptions page;
  page.max_uploads = 2;
  std::vector<std::pair<std::string, std::string>> seen;
  for (int i = 0; i < 10; ++i) {
    r = store_->ListMultipartUploads("b", page);
    ASSERT_OK(r);
    for (const UploadInfo& u : r->uploads) seen.emplace_back(u.key, u.upload_id);
    if (!r->truncated) break;
    page.key_marker = r->next_key_marker;
    page.upload_id_marker = r->next_upload_id_marker;
  }
  EXPECT_EQ(seen, made);
  // A key marker alone skips every upload of that key.
  ListUploadsOptions after_a;
  after_a.key_marker = "a";
  r = store_->ListMultipartUploads("b", after_a);
  ASSERT_OK(r);
  ASSERT_EQ(r->uploads.size(), made.size() - 2);
  EXPECT_EQ(r->uploads[0].key, "x/1");
}

TEST_F(MultipartTest, CompositeAndFullObjectChecksums) {
  std::string p1 = RandomData(kMinPartSize, 11), p2 = RandomData(1000, 12);
  for (ChecksumAlgorithm alg : {ChecksumAlgorithm::kCrc32, ChecksumAlgorithm::kCrc32c,
                                ChecksumAlgorithm::kCrc64Nvme, ChecksumAlgorithm::kSha256}) {
    for (ChecksumType type : {ChecksumType::kComposite, ChecksumType::kFullObject}) {
      if (type == ChecksumType::kFullObject && alg == ChecksumAlgorithm::kSha256) continue;
      std::string id = Create(ChecksumValue{alg, type, ""});
      ASSERT_OK(Part(id, 1, p1, alg));
      ASSERT_OK(Part(id, 2, p2, alg));
      CompletedPart c1 = Listed(1, p1);
      c1.checksum = Base64Encode(ComputeChecksum(alg, p1));
      Result<ObjectMeta> m =
          store_->CompleteMultipartUpload("b", "mp", id, {c1, Listed(2, p2)}, {});
      ASSERT_OK(m);
      ASSERT_TRUE(m->checksum.has_value());
      EXPECT_EQ(m->checksum->algorithm, alg);
      EXPECT_EQ(m->checksum->type, type);
      if (type == ChecksumType::kComposite) {
        std::string want = Base64Encode(ComputeChecksum(
                               alg, ComputeChecksum(alg, p1) + ComputeChecksum(alg, p2))) +
                           "-2";
        EXPECT_EQ(m->checksum->value, want);
      } else {
        EXPECT_EQ(m->checksum->value, Base64Encode(ComputeChecksum(alg, p1 + p2)));
      }
      EXPECT_EQ(m->parts[0].checksum, Base64Encode(ComputeChecksum(alg, p1)));
    }
  }
  // Parts without the upload's checksum cannot complete it.
  std::string id = Create(ChecksumValue{ChecksumAlgorithm::kCrc32, ChecksumType::kComposite, ""});
  ASSERT_OK(Part(id, 1, "no checksum"));
  EXPECT_CODE(store_->CompleteMultipartUpload("b", "mp", id, {Listed(1, "no checksum")}, {}),
              Code::kInvalidPart);
}

TEST_F(MultipartTest, DeleteBucketAbortsUploads) {
  std::string id = Create();
  ASSERT_OK(Part(id, 1, "a"));
  ASSERT_OK(Part(id, 2, "b"));
  ASSERT_OK(store_->DeleteBucket("b"));
  EXPECT_EQ(CountFiles("blobs"), 0u);
  ASSERT_OK(store_->CreateBucket("b", "o"));
  EXPECT_CODE(store_->GetUpload("b", "mp", id), Code::kNoSuchUpload);
  store_.reset();
  EXPECT_EQ(CountRecords("P"), 0u);
  EXPECT_EQ(CountRecords("U"), 0u);
  EXPECT_EQ(CountRecords("R"), 0u);
  EXPECT_EQ(CountRecords("G"), 0u);
}

// ---- Concurrency ----

TEST_F(StoreTest, ConcurrentWritersToOneKey) {
  ASSERT_OK(store_->CreateBucket("b", "o"));
  constexpr int kThreads = 8, kRounds = 10;
  std::vector<std::string> versions;
  for (int t = 0; t < kThreads; ++t) {
    for (int r = 0; r < kRounds; ++r)
      versions.push_back(RandomData(50000 + t * 1000 + r, t * 100 + r));
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        if (!Put("b", "hot", versions[t * kRounds + r]).ok()) ++failures;
        Result<ObjectHandle> h = store_->OpenObject("b", "hot");
        if (!h) {
          ++failures;
          continue;
        }
        // Whatever version a reader got, it is one whole version.
        std::string got = ReadHandle(*h);
        if (std::find(versions.begin(), versions.end(), got) == versions.end()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  std::string final_data = Read("b", "hot");
  EXPECT_NE(std::find(versions.begin(), versions.end(), final_data), versions.end());
  EXPECT_EQ(CountFiles("blobs"), 1u);
  EXPECT_EQ(CountFiles("tmp"), 0u);
  store_.reset();
  EXPECT_EQ(CountRecords("R"), 1u);
  EXPECT_EQ(CountRecords("G"), 0u);
}

TEST_F(StoreTest, OpenHandleKeepsReadingTheOldVersion) {
  ASSERT_OK(store_->CreateBucket("b", "o"));
  std::string v1 = RandomData(300000, 1), v2 = RandomData(1000, 2);
  ASSERT_OK(Put("b", "k", v1));
  Result<ObjectHandle> old = store_->OpenObject("b", "k");
  ASSERT_OK(old);
  ASSERT_OK(Put("b", "k", v2));
  EXPECT_EQ(CountFiles("blobs"), 1u);  // v1's file is unlinked ...
  EXPECT_EQ(ReadHandle(*old), v1);     // ... yet the open handle reads it whole
  ASSERT_OK(store_->DeleteObject("b", "k"));
  EXPECT_EQ(ReadHandle(*old), v1);
}

TEST_F(StoreTest, ConcurrentBucketDeleteAndPuts) {
  // A PUT racing DeleteBucket either lands before (delete fails: not empty) or fails with
  // NoSuchBucket; it never lands in a deleted bucket.
  for (int round = 0; round < 20; ++round) {
    ASSERT_OK(store_->CreateBucket("b", "o"));
    std::thread writer([&] { Put("b", "k", "v").status().IgnoreError(); });
    Status del = store_->DeleteBucket("b");
    writer.join();
    if (del.ok()) {
      EXPECT_CODE(store_->HeadObject("b", "k"), Code::kNoSuchBucket);
    } else {
      EXPECT_EQ(del.code(), Code::kBucketNotEmpty);
      ASSERT_OK(store_->DeleteObject("b", "k"));
      ASSERT_OK(store_->DeleteBucket("b"));
    }
  }
  store_.reset();
  EXPECT_EQ(CountRecords("O"), 0u);
  EXPECT_EQ(CountRecords("R"), 0u);
}

// ---- Failures and recovery ----

TEST_F(StoreTest, BlobSyncFailureCommitsNothing) {
  FaultEnv env;
  Reopen(StoreOptions{.sync = true, .env = &env});
  ASSERT_OK(store_->CreateBucket("b", "o"));
  ASSERT_OK(Put("b", "k", "old"));
  env.fail_sync = true;
  EXPECT_CODE(Put("b", "k", "new"), Code::kIoError);
  env.fail_sync = false;
  // The blob's name must be durable before the commit too.
  env.fail_sync_dir = true;
  EXPECT_CODE(Put("b", "k", "new"), Code::kIoError);
  env.fail_sync_dir = false;
  EXPECT_EQ(Read("b", "k"), "old");
  EXPECT_EQ(CountFiles("tmp"), 0u);
  EXPECT_EQ(CountFiles("blobs"), 1u);
}

TEST_F(StoreTest, RecoveryFinishesCommitsAndRemovesLeftovers) {
  FaultEnv env;
  Reopen(StoreOptions{.sync = true, .env = &env});
  ASSERT_OK(store_->CreateBucket("b", "o"));
  ASSERT_OK(Put("b", "replaced", "old bytes"));

  // A crash after the commit batch, before the rename: the object is in tmp/ and readable.
  env.fail_rename = true;
  std::string data = RandomData(12345, 3);
  ASSERT_OK(Put("b", "k", data));
  env.fail_rename = false;
  EXPECT_EQ(CountFiles("tmp"), 1u);
  EXPECT_EQ(Read("b", "k"), data);

  // A crash after an overwrite's commit, before the old blob's unlink: a G record remains.
  env.fail_unlink = true;
  ASSERT_OK(Put("b", "replaced", "new bytes"));
  env.fail_unlink = false;
  EXPECT_EQ(CountFiles("blobs"), 2u);  // old + new of "replaced"

  store_.reset();
  // A blob that never committed, as a crash leaves it, and an orphan in blobs/ that nothing
  // references (an unlink lost with its unsynced directory).
  std::string stray = "cd" + std::string(30, '1');
  std::string orphan = "ab" + std::string(30, '0');
  for (const std::string& path : {data_dir_ + "/tmp/" + stray, data_dir_ + "/blobs/ab/" + orphan}) {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_TRUE(f != nullptr);
    std::fclose(f);
  }
  EXPECT_EQ(CountFiles("tmp"), 2u);
  EXPECT_EQ(CountRecords("G"), 1u);

  Reopen();
  EXPECT_EQ(Read("b", "k"), data);
  EXPECT_EQ(Read("b", "replaced"), "new bytes");
  EXPECT_EQ(CountFiles("tmp"), 0u);
  EXPECT_EQ(CountFiles("blobs"), 2u);  // k and replaced; no orphan, no retired blob
  EXPECT_FALSE(fs::exists(data_dir_ + "/tmp/" + stray));
  EXPECT_FALSE(fs::exists(data_dir_ + "/blobs/ab/" + orphan));
  store_.reset();
  EXPECT_EQ(CountRecords("G"), 0u);
  EXPECT_EQ(CountRecords("R"), 2u);
}

TEST_F(StoreTest, CorruptRecordIsReportedNotFatal) {
  ASSERT_OK(store_->CreateBucket("b", "o"));
  ASSERT_OK(Put("b", "good", "fine"));
  ASSERT_OK(Put("b", "bad", "to be corrupted"));
  store_.reset();
  {
    std::unique_ptr<rocksdb::DB> db = RawDb();
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), codec::ObjectKey("b", "bad"), "garbage\x01\x02").ok());
  }
  Reopen();
  EXPECT_CODE(store_->HeadObject("b", "bad"), Code::kCorruption);
  EXPECT_CODE(store_->OpenObject("b", "bad"), Code::kCorruption);
  EXPECT_CODE(store_->ListObjects("b", {}), Code::kCorruption);
  EXPECT_CODE(store_->SetObjectTags("b", "bad", {}), Code::kCorruption);
  WriteConditions match;
  match.if_match = "abc";
  EXPECT_CODE(Put("b", "bad", "x", match), Code::kCorruption);
  EXPECT_EQ(Read("b", "good"), "fine");
  // The corrupt record can still be replaced or deleted.
  ASSERT_OK(Put("b", "bad", "replacement"));
  EXPECT_EQ(Read("b", "bad"), "replacement");
  ASSERT_OK(store_->DeleteObject("b", "bad"));
  Result<ListResult> list = store_->ListObjects("b", {});
  ASSERT_OK(list);
  EXPECT_EQ(Keys(*list), std::vector<std::string>{"good"});
}

TEST_F(StoreTest, MissingBlobIsCorruption) {
  ASSERT_OK(store_->CreateBucket("b", "o"));
  Result<ObjectMeta> m = Put("b", "k", "data");
  ASSERT_OK(m);
  const std::string& id = m->extents[0].blob_id;
  fs::remove(data_dir_ + "/blobs/" + id.substr(0, 2) + "/" + id);
  EXPECT_CODE(store_->OpenObject("b", "k"), Code::kCorruption);
}

}  // namespace
}  // namespace vlake::store
