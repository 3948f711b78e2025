#include "vector/dataset_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "vector/types.h"

namespace vlake::vector {
namespace {

// Every format here is little-endian except IDX, whose header is read byte by byte.
static_assert(std::endian::native == std::endian::little, "dataset readers assume little-endian");

// Bounds one Next call (the floats it returns, the bytes it reads) whatever max_rows says.
constexpr int64_t kMaxBatchBytes = int64_t{64} << 20;
// A CSV record longer than this is refused rather than buffered without limit.
constexpr size_t kMaxCsvRecordBytes = size_t{64} << 20;
// NumPy's own reader refuses headers above 10000 bytes by default; this only bounds memory.
constexpr uint32_t kMaxNpyHeaderBytes = 1 << 20;
constexpr size_t kSourceBufferBytes = 1 << 20;

Status Invalid(const std::string& path, const std::string& message) {
  return Status(Code::kInvalidArgument, path + ": " + message);
}

Status CheckDim(const std::string& path, int64_t dim) {
  if (dim >= 1 && dim <= kMaxDim) return Status::Ok();
  return Invalid(path,
                 "dimension " + std::to_string(dim) + " is outside 1.." + std::to_string(kMaxDim));
}

// `suffix` is lowercase.
bool EndsWithIgnoreCase(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  s.remove_prefix(s.size() - suffix.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != suffix[i]) return false;
  }
  return true;
}

bool IsGzipPath(std::string_view path) { return EndsWithIgnoreCase(path, ".gz"); }

// Buffered sequential reads from a plain file or a gzip stream. Errors are sticky: after one,
// Read returns short, Get returns -1 and status() says why.
class ByteSource {
 public:
  static Result<std::unique_ptr<ByteSource>> Open(const std::string& path, bool gzip) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open " + path, errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      Status s = ErrnoStatus("stat " + path, errno);
      ::close(fd);
      return s;
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(fd);
      return ErrnoStatus("open " + path, EISDIR);
    }
    const bool size_known = S_ISREG(st.st_mode) && !gzip;
    // A small file gets a small buffer: opening many tiny files (tests, the fuzzer) stays cheap.
    size_t buffer_bytes = size_known ? std::clamp<size_t>(st.st_size + 1, 64, kSourceBufferBytes)
                                     : kSourceBufferBytes;
    auto src = std::unique_ptr<ByteSource>(new ByteSource(path, buffer_bytes));
    src->file_bytes_ = S_ISREG(st.st_mode) ? st.st_size : 0;
    src->size_known_ = size_known;
    if (!gzip) {
      src->fd_ = fd;
      return src;
    }
    // gzclose closes fd; a failed gzdopen leaves it open.
    src->gz_ = ::gzdopen(fd, "rb");
    if (src->gz_ == nullptr) {
      ::close(fd);
      return Status(Code::kIoError, path + ": gzdopen failed");
    }
    ::gzbuffer(src->gz_, 256 << 10);
    return src;
  }

  ~ByteSource() {
    if (gz_ != nullptr) ::gzclose(gz_);
    if (fd_ >= 0) ::close(fd_);
  }

  // Copies n bytes into dst; fewer only at end of input or on error.
  size_t Read(void* dst, size_t n) {
    char* out = static_cast<char*>(dst);
    size_t done = 0;
    while (done < n) {
      if (pos_ == end_) {
        // Large reads bypass the buffer.
        if (n - done >= buf_.size()) {
          size_t got = ReadRaw(out + done, n - done);
          done += got;
          offset_ += static_cast<int64_t>(got);
          if (got == 0) break;
          continue;
        }
        if (!Fill()) break;
      }
      size_t take = std::min(n - done, end_ - pos_);
      std::memcpy(out + done, buf_.data() + pos_, take);
      pos_ += take;
      done += take;
      offset_ += static_cast<int64_t>(take);
    }
    return done;
  }

  // The next byte, or -1 at end of input or on error.
  int Get() {
    if (pos_ == end_ && !Fill()) return -1;
    ++offset_;
    return static_cast<unsigned char>(buf_[pos_++]);
  }

  // Copies up to n (<= 64) upcoming bytes without consuming them; returns how
  // many there are (fewer than n only at end of input or on error).
  size_t Peek(void* dst, size_t n) {
    if (end_ - pos_ < n) {
      std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
      end_ -= pos_;
      pos_ = 0;
      while (end_ < n) {
        size_t got = ReadRaw(buf_.data() + end_, buf_.size() - end_);
        if (got == 0) break;
        end_ += got;
      }
    }
    size_t have = std::min(n, end_ - pos_);
    std::memcpy(dst, buf_.data() + pos_, have);
    return have;
  }

  const Status& status() const { return status_; }
  // Uncompressed bytes consumed so far: the position error messages report.
  int64_t offset() const { return offset_; }
  int64_t raw_bytes_read() const {
    return gz_ != nullptr ? static_cast<int64_t>(::gzoffset(gz_)) : offset_;
  }
  int64_t file_bytes() const { return file_bytes_; }
  // True when file_bytes() is the exact size of the data (a plain regular file).
  bool size_known() const { return size_known_; }

 private:
  ByteSource(std::string path, size_t buffer_bytes) : path_(std::move(path)), buf_(buffer_bytes) {}

  bool Fill() {
    pos_ = 0;
    end_ = ReadRaw(buf_.data(), buf_.size());
    return end_ > 0;
  }

  // Up to n bytes from the file; 0 at end of input or on error (then status_ is set).
  size_t ReadRaw(char* dst, size_t n) {
    if (!status_.ok() || eof_) return 0;
    n = std::min<size_t>(n, INT_MAX);
    if (gz_ == nullptr) {
      for (;;) {
        ssize_t got = ::read(fd_, dst, n);
        if (got >= 0) {
          eof_ = got == 0;
          return static_cast<size_t>(got);
        }
        if (errno != EINTR) {
          status_ = ErrnoStatus("read " + path_, errno);
          return 0;
        }
      }
    }
    int got = ::gzread(gz_, dst, static_cast<unsigned>(n));
    int err = Z_OK;
    const char* message = ::gzerror(gz_, &err);
    if (got > 0) return static_cast<size_t>(got);
    // gzread reports a cut-off stream as a quiet end of input with Z_BUF_ERROR set.
    if (err == Z_ERRNO) {
      status_ = ErrnoStatus("read " + path_, errno);
    } else if (err == Z_BUF_ERROR) {
      status_ = Invalid(path_, "gzip stream is truncated");
    } else if (err != Z_OK || got < 0) {
      status_ = Invalid(path_, std::string("gzip: ") + message);
    }
    eof_ = true;
    return 0;
  }

  std::string path_;
  int fd_ = -1;
  gzFile gz_ = nullptr;
  std::vector<char> buf_;
  size_t pos_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
  Status status_;
  int64_t offset_ = 0;
  int64_t file_bytes_ = 0;
  bool size_known_ = false;
};

// Reads a fixed-size header field; InvalidArgument naming `what` when the file ends first.
Status ReadHeader(ByteSource& src, const std::string& path, void* dst, size_t n,
                  std::string_view what) {
  if (src.Read(dst, n) == n) return Status::Ok();
  VLAKE_RETURN_IF_ERROR(src.status());
  return Invalid(path, "truncated " + std::string(what));
}

// Element types of the binary formats, all little-endian.
enum class Elem : uint8_t { kF32, kF64, kU8, kI8, kI32, kI64 };

size_t ElemBytes(Elem e) {
  switch (e) {
    case Elem::kU8:
    case Elem::kI8:
      return 1;
    case Elem::kF32:
    case Elem::kI32:
      return 4;
    case Elem::kF64:
    case Elem::kI64:
      return 8;
  }
  return 1;
}

template <typename T>
void ConvertAs(const char* src, size_t count, float* dst) {
  for (size_t i = 0; i < count; ++i) {
    T v;
    std::memcpy(&v, src + i * sizeof(T), sizeof(T));
    dst[i] = static_cast<float>(v);
  }
}

void ToFloat(Elem e, const char* src, size_t count, float* dst) {
  switch (e) {
    case Elem::kF32:
      std::memcpy(dst, src, count * sizeof(float));
      return;
    case Elem::kF64:
      return ConvertAs<double>(src, count, dst);
    case Elem::kU8:
      return ConvertAs<uint8_t>(src, count, dst);
    case Elem::kI8:
      return ConvertAs<int8_t>(src, count, dst);
    case Elem::kI32:
      return ConvertAs<int32_t>(src, count, dst);
    case Elem::kI64:
      return ConvertAs<int64_t>(src, count, dst);
  }
}

// Rows per Next call so that neither the bytes read nor the floats returned pass the bound.
int64_t RowsPerCall(int64_t max_rows, int dim, size_t elem_bytes) {
  int64_t row_bytes =
      static_cast<int64_t>(dim) * static_cast<int64_t>(std::max<size_t>(elem_bytes, 4));
  return std::min(max_rows, std::max<int64_t>(1, kMaxBatchBytes / row_bytes));
}

void ResetBatch(int dim, VectorBatch* batch) {
  batch->rows = 0;
  batch->dim = dim;
  batch->vectors.clear();
  batch->columns.clear();
}

class ReaderBase : public VectorFileReader {
 public:
  int dim() const override { return dim_; }
  int64_t bytes_read() const override { return src_->raw_bytes_read(); }
  int64_t file_bytes() const override { return src_->file_bytes(); }

 protected:
  ReaderBase(std::string path, std::unique_ptr<ByteSource> src, int dim)
      : path_(std::move(path)), src_(std::move(src)), dim_(dim) {}

  Status CheckMaxRows(int64_t max_rows) const {
    if (max_rows > 0) return Status::Ok();
    return Invalid(path_, "Next needs max_rows > 0, got " + std::to_string(max_rows));
  }
  Status Truncated() const {
    if (!src_->status().ok()) return src_->status();
    return Invalid(path_, "truncated at byte " + std::to_string(src_->offset()));
  }

  const std::string path_;
  const std::unique_ptr<ByteSource> src_;
  const int dim_;
  std::vector<char> scratch_;
};

// Formats with a header that gives rows and dim, then rows*dim elements: fbin, u8bin, i8bin,
// npy and idx. The source is positioned just after the header.
class DenseReader final : public ReaderBase {
 public:
  DenseReader(std::string path, std::unique_ptr<ByteSource> src, int64_t rows, int dim, Elem elem)
      : ReaderBase(std::move(path), std::move(src), dim), rows_(rows), elem_(elem) {}

  // Checks what the header promises against the file size, when the size is known.
  static Status CheckSize(const std::string& path, const ByteSource& src, int64_t data_offset,
                          int64_t rows, int dim, Elem elem) {
    int64_t data_bytes = 0;
    if (rows < 0 ||
        __builtin_mul_overflow(rows, static_cast<int64_t>(dim) * ElemBytes(elem), &data_bytes) ||
        data_bytes > INT64_MAX - data_offset) {
      return Invalid(path, "header gives " + std::to_string(rows) + " rows, too many");
    }
    if (!src.size_known() || src.file_bytes() == data_offset + data_bytes) return Status::Ok();
    return Invalid(path, "file is " + std::to_string(src.file_bytes()) + " bytes but its header (" +
                             std::to_string(rows) + " rows x " + std::to_string(dim) + ") needs " +
                             std::to_string(data_offset + data_bytes));
  }

  std::optional<int64_t> total_rows() const override { return rows_; }

  Status Next(int64_t max_rows, VectorBatch* batch) override {
    VLAKE_RETURN_IF_ERROR(CheckMaxRows(max_rows));
    ResetBatch(dim_, batch);
    int64_t n = std::min(RowsPerCall(max_rows, dim_, ElemBytes(elem_)), rows_ - done_);
    if (n == 0) {
      // A compressed or piped file's size could not be checked up front.
      char extra;
      if (src_->Read(&extra, 1) != 0) {
        return Invalid(path_, "unexpected data after the last row, at byte " +
                                  std::to_string(src_->offset() - 1));
      }
      return src_->status();
    }
    size_t count = static_cast<size_t>(n) * static_cast<size_t>(dim_);
    size_t bytes = count * ElemBytes(elem_);
    scratch_.resize(bytes);
    if (src_->Read(scratch_.data(), bytes) != bytes) return Truncated();
    batch->vectors.resize(count);
    ToFloat(elem_, scratch_.data(), count, batch->vectors.data());
    batch->rows = n;
    done_ += n;
    return Status::Ok();
  }

 private:
  const int64_t rows_;
  const Elem elem_;
  int64_t done_ = 0;
};

// TEXMEX .fvecs / .ivecs / .bvecs: each row is an int32 dim followed by dim elements.
class VecsReader final : public ReaderBase {
 public:
  static Result<std::unique_ptr<VectorFileReader>> Open(const std::string& path,
                                                        std::unique_ptr<ByteSource> src,
                                                        Elem elem) {
    int32_t dim = 0;
    size_t got = src->Peek(&dim, sizeof(dim));
    VLAKE_RETURN_IF_ERROR(src->status());
    if (got == 0) return Invalid(path, "empty file, no vectors");
    if (got < sizeof(dim)) return Invalid(path, "truncated at byte " + std::to_string(got));
    VLAKE_RETURN_IF_ERROR(CheckDim(path, dim));
    return std::unique_ptr<VectorFileReader>(new VecsReader(path, std::move(src), dim, elem));
  }

  std::optional<int64_t> total_rows() const override {
    if (!src_->size_known() || src_->file_bytes() % row_bytes_ != 0) return std::nullopt;
    return src_->file_bytes() / row_bytes_;
  }

  Status Next(int64_t max_rows, VectorBatch* batch) override {
    VLAKE_RETURN_IF_ERROR(CheckMaxRows(max_rows));
    ResetBatch(dim_, batch);
    int64_t n = RowsPerCall(max_rows, dim_, ElemBytes(elem_));
    if (auto total = total_rows()) n = std::min(n, *total - done_);
    if (n <= 0) return Status::Ok();
    scratch_.resize(static_cast<size_t>(n) * row_bytes_);
    size_t got = src_->Read(scratch_.data(), scratch_.size());
    VLAKE_RETURN_IF_ERROR(src_->status());
    size_t rows = got / row_bytes_;
    // Check every row's dim, including that of a partial last row: a wrong dim explains a
    // misaligned file better than "truncated".
    for (size_t r = 0; r * row_bytes_ + sizeof(int32_t) <= got; ++r) {
      int32_t d;
      std::memcpy(&d, scratch_.data() + r * row_bytes_, sizeof(d));
      if (d != dim_) {
        return Invalid(path_, "row " + std::to_string(done_ + static_cast<int64_t>(r)) +
                                  " has dim " + std::to_string(d) + ", expected " +
                                  std::to_string(dim_));
      }
    }
    if (got % row_bytes_ != 0) return Truncated();
    batch->vectors.resize(rows * static_cast<size_t>(dim_));
    for (size_t r = 0; r < rows; ++r) {
      ToFloat(elem_, scratch_.data() + r * row_bytes_ + sizeof(int32_t), static_cast<size_t>(dim_),
              batch->vectors.data() + r * static_cast<size_t>(dim_));
    }
    batch->rows = static_cast<int64_t>(rows);
    done_ += batch->rows;
    return Status::Ok();
  }

 private:
  VecsReader(const std::string& path, std::unique_ptr<ByteSource> src, int dim, Elem elem)
      : ReaderBase(path, std::move(src), dim),
        elem_(elem),
        row_bytes_(sizeof(int32_t) + static_cast<size_t>(dim) * ElemBytes(elem)) {}

  const Elem elem_;
  const size_t row_bytes_;
  int64_t done_ = 0;
};

// big-ann-benchmarks .fbin / .u8bin / .i8bin: uint32 rows, uint32 dim, then the data.
Result<std::unique_ptr<VectorFileReader>> OpenBin(const std::string& path,
                                                  std::unique_ptr<ByteSource> src, Elem elem) {
  uint32_t header[2];
  VLAKE_RETURN_IF_ERROR(
      ReadHeader(*src, path, header, sizeof(header), "header (uint32 rows, dim)"));
  VLAKE_RETURN_IF_ERROR(CheckDim(path, header[1]));
  int dim = static_cast<int>(header[1]);
  VLAKE_RETURN_IF_ERROR(DenseReader::CheckSize(path, *src, sizeof(header), header[0], dim, elem));
  return std::unique_ptr<VectorFileReader>(
      new DenseReader(path, std::move(src), header[0], dim, elem));
}

// MNIST IDX: 0x00 0x00, a type byte, a dimension count, then that many big-endian uint32
// sizes. Row = first dimension; the rest are flattened (idx1 label files give dim 1).
Result<std::unique_ptr<VectorFileReader>> OpenIdx(const std::string& path,
                                                  std::unique_ptr<ByteSource> src) {
  unsigned char magic[4];
  VLAKE_RETURN_IF_ERROR(ReadHeader(*src, path, magic, sizeof(magic), "IDX header"));
  if (magic[0] != 0 || magic[1] != 0) return Invalid(path, "not an IDX file (bad magic)");
  Elem elem;
  if (magic[2] == 0x08) {
    elem = Elem::kU8;
  } else if (magic[2] == 0x09) {
    elem = Elem::kI8;
  } else {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "0x%02x", magic[2]);
    return Invalid(path, std::string("IDX element type ") + hex +
                             " is not supported (want 0x08 unsigned byte or 0x09 signed byte)");
  }
  if (magic[3] == 0) return Invalid(path, "IDX file with zero dimensions");
  int64_t rows = 0, dim = 1;
  for (int i = 0; i < magic[3]; ++i) {
    unsigned char b[4];
    VLAKE_RETURN_IF_ERROR(ReadHeader(*src, path, b, sizeof(b), "IDX header"));
    int64_t size = (int64_t{b[0]} << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
    if (i == 0) {
      rows = size;
    } else {
      dim *= size;
      if (dim == 0 || dim > kMaxDim) return CheckDim(path, dim);
    }
  }
  VLAKE_RETURN_IF_ERROR(
      DenseReader::CheckSize(path, *src, 4 + 4 * magic[3], rows, static_cast<int>(dim), elem));
  return std::unique_ptr<VectorFileReader>(
      new DenseReader(path, std::move(src), rows, static_cast<int>(dim), elem));
}

// The header of a .npy file is a Python dict literal, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (1000, 128), }
// This parses exactly that grammar: string keys; string, True/False or int-tuple values.
struct NpyHeader {
  std::string descr;
  std::optional<bool> fortran_order;
  std::optional<std::vector<uint64_t>> shape;
};

class NpyDictParser {
 public:
  explicit NpyDictParser(std::string_view text) : s_(text) {}

  Result<NpyHeader> Parse() {
    NpyHeader h;
    bool have_descr = false;
    VLAKE_RETURN_IF_ERROR(Expect('{'));
    while (!Consume('}')) {
      std::string key;
      VLAKE_RETURN_IF_ERROR(String(&key));
      VLAKE_RETURN_IF_ERROR(Expect(':'));
      if (key == "descr") {
        if (Peek() == '[') return Fail("structured dtypes are not supported");
        VLAKE_RETURN_IF_ERROR(String(&h.descr));
        have_descr = true;
      } else if (key == "fortran_order") {
        if (Word("True")) {
          h.fortran_order = true;
        } else if (Word("False")) {
          h.fortran_order = false;
        } else {
          return Fail("fortran_order is not True or False");
        }
      } else if (key == "shape") {
        h.shape.emplace();
        VLAKE_RETURN_IF_ERROR(Tuple(&*h.shape));
      } else {
        return Fail("unexpected key '" + key + "'");
      }
      if (!Consume(',')) {
        VLAKE_RETURN_IF_ERROR(Expect('}'));
        break;
      }
    }
    SkipSpace();
    if (pos_ != s_.size()) return Fail("unexpected text after the closing '}'");
    if (!have_descr || !h.fortran_order || !h.shape) {
      return Fail("needs the keys 'descr', 'fortran_order' and 'shape'");
    }
    return h;
  }

 private:
  Status Fail(const std::string& why) const {
    return Status(Code::kInvalidArgument, "npy header: " + why);
  }
  void SkipSpace() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  char Peek() {
    SkipSpace();
    return pos_ < s_.size() ? s_[pos_] : '\0';
  }
  bool Consume(char c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }
  Status Expect(char c) {
    if (Consume(c)) return Status::Ok();
    return Fail(std::string("expected '") + c + "' at offset " + std::to_string(pos_));
  }
  bool Word(std::string_view w) {
    SkipSpace();
    if (s_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }
  Status String(std::string* out) {
    char quote = Peek();
    if (quote != '\'' && quote != '"')
      return Fail("expected a string at offset " + std::to_string(pos_));
    size_t end = s_.find(quote, ++pos_);
    if (end == std::string_view::npos) return Fail("unterminated string");
    out->assign(s_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return Status::Ok();
  }
  Status Tuple(std::vector<uint64_t>* out) {
    VLAKE_RETURN_IF_ERROR(Expect('('));
    while (!Consume(')')) {
      SkipSpace();
      uint64_t v = 0;
      auto [end, ec] = std::from_chars(s_.data() + pos_, s_.data() + s_.size(), v);
      if (ec != std::errc()) return Fail("bad shape entry at offset " + std::to_string(pos_));
      pos_ = static_cast<size_t>(end - s_.data());
      Consume('L');  // Python 2 long literals
      out->push_back(v);
      if (!Consume(',')) {
        VLAKE_RETURN_IF_ERROR(Expect(')'));
        break;
      }
    }
    return Status::Ok();
  }

  std::string_view s_;
  size_t pos_ = 0;
};

Result<std::unique_ptr<VectorFileReader>> OpenNpy(const std::string& path,
                                                  std::unique_ptr<ByteSource> src) {
  unsigned char pre[8];
  VLAKE_RETURN_IF_ERROR(ReadHeader(*src, path, pre, sizeof(pre), "npy header"));
  if (std::memcmp(pre, "\x93NUMPY", 6) != 0) return Invalid(path, "not a .npy file (bad magic)");
  // Version 1 stores the header length in 2 bytes, versions 2 and 3 in 4.
  uint32_t header_bytes = 0;
  if (pre[6] == 1 || pre[6] == 2 || pre[6] == 3) {
    VLAKE_RETURN_IF_ERROR(
        ReadHeader(*src, path, &header_bytes, pre[6] == 1 ? 2 : 4, "npy header length"));
  } else {
    return Invalid(path, "npy version " + std::to_string(pre[6]) + "." + std::to_string(pre[7]) +
                             " is not supported (want 1.0, 2.0 or 3.0)");
  }
  if (header_bytes > kMaxNpyHeaderBytes) {
    return Invalid(path, "npy header of " + std::to_string(header_bytes) + " bytes is too large");
  }
  std::string text(header_bytes, '\0');
  VLAKE_RETURN_IF_ERROR(ReadHeader(*src, path, text.data(), text.size(), "npy header"));
  auto parsed = NpyDictParser(text).Parse();
  if (!parsed.ok()) return Invalid(path, parsed.error().message());
  const NpyHeader& h = *parsed;

  static constexpr std::pair<std::string_view, Elem> kDtypes[] = {
      {"<f4", Elem::kF32}, {"<f8", Elem::kF64}, {"|u1", Elem::kU8},
      {"|i1", Elem::kI8},  {"<i4", Elem::kI32}, {"<i8", Elem::kI64}};
  auto it = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                         [&](const auto& d) { return d.first == h.descr; });
  if (it == std::end(kDtypes)) {
    return Invalid(
        path, "npy dtype '" + h.descr + "' is not supported (want <f4, <f8, |u1, |i1, <i4 or <i8)");
  }
  if (*h.fortran_order) {
    return Invalid(path,
                   "npy array is in Fortran order; save it in C order (np.ascontiguousarray)");
  }
  if (h.shape->size() != 2) {
    std::string shape;
    for (uint64_t n : *h.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(n);
    return Invalid(path, "npy array has shape (" + shape + (h.shape->size() == 1 ? ",)" : ")") +
                             "; want a 2-D (rows, dim) array");
  }
  uint64_t rows = (*h.shape)[0], dim = (*h.shape)[1];
  VLAKE_RETURN_IF_ERROR(CheckDim(path, static_cast<int64_t>(std::min<uint64_t>(dim, INT64_MAX))));
  if (rows > static_cast<uint64_t>(INT64_MAX)) return Invalid(path, "npy shape is too large");
  int64_t data_offset = 8 + (pre[6] == 1 ? 2 : 4) + static_cast<int64_t>(header_bytes);
  VLAKE_RETURN_IF_ERROR(DenseReader::CheckSize(path, *src, data_offset, static_cast<int64_t>(rows),
                                               static_cast<int>(dim), it->second));
  return std::unique_ptr<VectorFileReader>(new DenseReader(
      path, std::move(src), static_cast<int64_t>(rows), static_cast<int>(dim), it->second));
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Parses a whole (trimmed) cell as one float: decimal or exponent form, optional sign, inf/nan.
// from_chars rather than strtof: it ignores the locale's decimal point.
bool ParseFloat(std::string_view s, float* out) {
  s = Trim(s);
  if (s.size() > 1 && s[0] == '+' && s[1] != '-') s.remove_prefix(1);
  const char* end = s.data() + s.size();
  auto [stop, ec] = std::from_chars(s.data(), end, *out);
  if (s.empty() || stop != end) return false;
  if (ec != std::errc::result_out_of_range) return ec == std::errc();
  // Outside float32: values too small round to zero or a subnormal, as strtof would (files
  // saved from float64 hold them); values too large are refused rather than made inf.
  double d;
  if (std::from_chars(s.data(), end, d).ec == std::errc()) {
    if (std::fabs(d) >= 1) return false;
    *out = static_cast<float>(d);
    return true;
  }
  size_t e = s.find_first_of("eE");
  if (e == std::string_view::npos || e + 1 == s.size() || s[e + 1] != '-') return false;
  *out = s[0] == '-' ? -0.0f : 0.0f;
  return true;
}

// Appends the numbers of a vector cell: "[1, 2, 3]" (JSON-like), "1 2 3" or "1;2;3". Numbers
// are separated by a comma, a semicolon or whitespace; an empty element ("1,,2") is an error.
Status ParseList(std::string_view cell, std::vector<float>* out) {
  std::string_view s = Trim(cell);
  if (!s.empty() && s.front() == '[') {
    if (s.back() != ']') return Status(Code::kInvalidArgument, "'[' without a closing ']'");
    s = Trim(s.substr(1, s.size() - 2));
  }
  auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  size_t i = 0;
  while (i < s.size()) {
    size_t end = i;
    while (end < s.size() && s[end] != ',' && s[end] != ';' && !is_space(s[end])) ++end;
    float v;
    if (!ParseFloat(s.substr(i, end - i), &v)) {
      std::string bad(s.substr(i, std::min<size_t>(end - i, 40)));
      return Status(Code::kInvalidArgument,
                    bad.empty() ? "empty element" : "'" + bad + "' is not a float32 number");
    }
    out->push_back(v);
    while (end < s.size() && is_space(s[end])) ++end;
    if (end < s.size() && (s[end] == ',' || s[end] == ';')) {
      ++end;
      while (end < s.size() && is_space(s[end])) ++end;
      if (end == s.size()) return Status(Code::kInvalidArgument, "empty element");
    }
    i = end;
  }
  return Status::Ok();
}

// A cell that holds a vector rather than a scalar: bracketed, or two or more numbers.
bool LooksLikeList(std::string_view cell) {
  std::string_view s = Trim(cell);
  if (!s.empty() && s.front() == '[') return true;
  std::vector<float> v;
  return ParseList(s, &v).ok() && v.size() >= 2;
}

// CSV (RFC 4180). Without a header every cell is a component; with one, one column holds the
// vectors and the others are passed through as text (or, when no column holds lists and every
// cell is a number, the columns are the components).
class CsvReader final : public ReaderBase {
 public:
  static Result<std::unique_ptr<VectorFileReader>> Open(const std::string& path,
                                                        std::unique_ptr<ByteSource> src,
                                                        std::string_view vector_column) {
    unsigned char bom[3];
    if (src->Peek(bom, 3) == 3 && std::memcmp(bom, "\xEF\xBB\xBF", 3) == 0) src->Read(bom, 3);
    auto r = std::unique_ptr<CsvReader>(new CsvReader(path, std::move(src)));
    VLAKE_RETURN_IF_ERROR(r->Init(vector_column));
    return std::unique_ptr<VectorFileReader>(std::move(r));
  }

  int dim() const override { return csv_dim_; }
  std::optional<int64_t> total_rows() const override { return std::nullopt; }

  Status Next(int64_t max_rows, VectorBatch* batch) override {
    VLAKE_RETURN_IF_ERROR(CheckMaxRows(max_rows));
    ResetBatch(csv_dim_, batch);
    if (vector_col_ >= 0) {
      for (size_t c = 0; c < names_.size(); ++c) {
        if (static_cast<int>(c) != vector_col_) batch->columns.push_back({names_[c], {}});
      }
    }
    int64_t n = RowsPerCall(max_rows, csv_dim_, sizeof(float));
    while (batch->rows < n) {
      if (!have_pending_) {
        VLAKE_ASSIGN_OR_RETURN(bool more, ReadRecord());
        if (!more) break;
      }
      have_pending_ = false;
      VLAKE_RETURN_IF_ERROR(AppendRow(batch));
    }
    return Status::Ok();
  }

 private:
  CsvReader(const std::string& path, std::unique_ptr<ByteSource> src)
      : ReaderBase(path, std::move(src), 0) {}

  Status LineError(const std::string& why) const {
    return Invalid(path_, "line " + std::to_string(record_line_) + ": " + why);
  }

  Status Init(std::string_view vector_column) {
    VLAKE_ASSIGN_OR_RETURN(bool any, ReadRecord());
    if (!any) return Invalid(path_, "empty file, no vectors");
    float unused;
    bool header = std::any_of(cells_.begin(), cells_.end(),
                              [&](const std::string& c) { return !ParseFloat(c, &unused); });
    if (!header) {
      if (!vector_column.empty()) {
        return Invalid(path_, "vector column '" + std::string(vector_column) +
                                  "' named but the file has no header row");
      }
      csv_dim_ = static_cast<int>(std::min<size_t>(cells_.size(), INT_MAX));
      VLAKE_RETURN_IF_ERROR(CheckDim(path_, csv_dim_));
      have_pending_ = true;
      return Status::Ok();
    }
    for (const std::string& c : cells_) {
      if (LooksLikeList(c)) {
        return LineError(
            "first line holds a vector but also text; add a header row naming "
            "the columns");
      }
      names_.emplace_back(Trim(c));
    }
    VLAKE_ASSIGN_OR_RETURN(bool more, ReadRecord());
    if (!more) return Invalid(path_, "header but no data rows; cannot tell the dimension");
    VLAKE_RETURN_IF_ERROR(CheckCellCount());
    VLAKE_RETURN_IF_ERROR(PickVectorColumn(vector_column));
    std::vector<float> v;
    if (vector_col_ >= 0) {
      if (Status s = ParseList(cells_[vector_col_], &v); !s.ok()) {
        return LineError("column '" + names_[vector_col_] + "': " + s.message());
      }
    }
    csv_dim_ =
        static_cast<int>(vector_col_ >= 0 ? std::min<size_t>(v.size(), INT_MAX) : names_.size());
    VLAKE_RETURN_IF_ERROR(CheckDim(path_, csv_dim_));
    have_pending_ = true;
    return Status::Ok();
  }

  // Chooses vector_col_ from the name given, else from the first data row in cells_.
  Status PickVectorColumn(std::string_view wanted) {
    std::string all;
    for (const std::string& n : names_) all += (all.empty() ? "" : ", ") + n;
    if (!wanted.empty()) {
      auto it = std::find(names_.begin(), names_.end(), wanted);
      if (it == names_.end()) {
        return Invalid(path_,
                       "no column named '" + std::string(wanted) + "' (columns: " + all + ")");
      }
      vector_col_ = static_cast<int>(it - names_.begin());
      return Status::Ok();
    }
    std::vector<int> lists;
    for (size_t c = 0; c < cells_.size(); ++c) {
      if (LooksLikeList(cells_[c])) lists.push_back(static_cast<int>(c));
    }
    if (lists.size() == 1) {
      vector_col_ = lists[0];
      return Status::Ok();
    }
    float unused;
    if (lists.empty() && std::all_of(cells_.begin(), cells_.end(), [&](const std::string& c) {
          return ParseFloat(c, &unused);
        })) {
      vector_col_ = -1;  // all-numeric rows under a header of component names
      return Status::Ok();
    }
    return LineError(std::string(lists.empty() ? "no column" : "more than one column") +
                     " looks like a vector (columns: " + all + "); name the vector column");
  }

  Status CheckCellCount() const {
    size_t want = names_.empty() ? static_cast<size_t>(csv_dim_) : names_.size();
    if (cells_.size() == want) return Status::Ok();
    return LineError(std::to_string(cells_.size()) + " cells, expected " + std::to_string(want));
  }

  Status AppendRow(VectorBatch* batch) {
    VLAKE_RETURN_IF_ERROR(CheckCellCount());
    size_t start = batch->vectors.size();
    if (vector_col_ < 0) {
      for (size_t c = 0; c < cells_.size(); ++c) {
        float v;
        if (!ParseFloat(cells_[c], &v)) {
          return LineError("cell " + std::to_string(c + 1) + ": '" + cells_[c].substr(0, 40) +
                           "' is not a float32 number");
        }
        batch->vectors.push_back(v);
      }
    } else {
      if (Status s = ParseList(cells_[vector_col_], &batch->vectors); !s.ok()) {
        return LineError("column '" + names_[vector_col_] + "': " + s.message());
      }
      size_t got = batch->vectors.size() - start;
      if (got != static_cast<size_t>(csv_dim_)) {
        return LineError("vector has " + std::to_string(got) + " components, expected " +
                         std::to_string(csv_dim_));
      }
      for (size_t c = 0, out = 0; c < cells_.size(); ++c) {
        if (static_cast<int>(c) != vector_col_) batch->columns[out++].values.push_back(cells_[c]);
      }
    }
    ++batch->rows;
    return Status::Ok();
  }

  // Reads the next record into cells_ and its first line into record_line_; false at end of
  // input. Blank lines are skipped. Quoted cells may hold commas, newlines and "" for '"'. An
  // unquoted cell that starts with '[' runs to its ']' (or the line's end), commas included,
  // because hand-written files rarely quote their vectors.
  Result<bool> ReadRecord() {
    for (;;) {
      record_line_ = line_;
      cells_.assign(1, std::string());
      size_t bytes = 0;
      bool cell_start = true, last_quoted = false, any_quoted = false, in_brackets = false;
      int c = src_->Get();
      if (c < 0) {
        VLAKE_RETURN_IF_ERROR(src_->status());
        return false;
      }
      while (c >= 0 && c != '\n') {
        if (++bytes > kMaxCsvRecordBytes) return LineError("record longer than 64 MiB");
        if (c == ',' && !in_brackets) {
          cells_.emplace_back();
          cell_start = true;
          last_quoted = false;
          c = src_->Get();
          continue;
        }
        if (c == '"' && cell_start) {
          VLAKE_RETURN_IF_ERROR(ReadQuoted(&bytes));
          cell_start = false;
          last_quoted = any_quoted = true;
          c = src_->Get();
          while (c == ' ' || c == '\t' || c == '\r') c = src_->Get();
          if (c >= 0 && c != ',' && c != '\n') {
            return LineError("unexpected '" + std::string(1, static_cast<char>(c)) +
                             "' after a closing quote");
          }
          continue;
        }
        if (c == '[' && cell_start) in_brackets = true;
        if (c == ']') in_brackets = false;
        cells_.back().push_back(static_cast<char>(c));
        cell_start = false;
        c = src_->Get();
      }
      VLAKE_RETURN_IF_ERROR(src_->status());
      if (c == '\n') ++line_;
      if (!last_quoted && !cells_.back().empty() && cells_.back().back() == '\r') {
        cells_.back().pop_back();
      }
      if (cells_.size() > 1 || !cells_[0].empty() || any_quoted) return true;
      if (c < 0) return false;
    }
  }

  // Reads a quoted cell's body after its opening quote, through the closing quote.
  Status ReadQuoted(size_t* bytes) {
    std::string& cell = cells_.back();
    for (;;) {
      int c = src_->Get();
      if (c < 0) {
        VLAKE_RETURN_IF_ERROR(src_->status());
        return LineError("quoted cell never closed");
      }
      if (++*bytes > kMaxCsvRecordBytes) return LineError("record longer than 64 MiB");
      if (c == '"') {
        unsigned char next;
        if (src_->Peek(&next, 1) == 0 || next != '"') return Status::Ok();
        src_->Get();
      }
      if (c == '\n') ++line_;
      cell.push_back(static_cast<char>(c));
    }
  }

  int csv_dim_ = 0;
  std::vector<std::string> names_;  // header cells, trimmed; empty without a header
  int vector_col_ = -1;             // index into names_, or -1: every cell is a component
  std::vector<std::string> cells_;  // the record last read
  bool have_pending_ = false;       // cells_ holds a data row Next has not returned yet
  int64_t line_ = 1;                // line of the next byte
  int64_t record_line_ = 1;
};

// Writes rows as they are produced; removes the file unless Finish succeeds.
class FileWriter {
 public:
  ~FileWriter() {
    if (file_ != nullptr) {
      std::fclose(file_);
      std::remove(path_.c_str());
    }
  }
  Status Open(const std::string& path, const void* data, int64_t rows, int dim) {
    path_ = path;
    if (rows < 0 || (rows > 0 && data == nullptr)) {
      return Invalid(path, "bad rows " + std::to_string(rows));
    }
    VLAKE_RETURN_IF_ERROR(CheckDim(path, dim));
    file_ = std::fopen(path.c_str(), "wb");
    if (file_ == nullptr) return ErrnoStatus("open " + path, errno);
    return Status::Ok();
  }
  Status Write(const void* p, size_t n) {
    if (n == 0 || std::fwrite(p, 1, n, file_) == n) return Status::Ok();
    return ErrnoStatus("write " + path_, errno);
  }
  Status Finish() {
    FILE* f = file_;
    file_ = nullptr;
    if (std::fclose(f) == 0) return Status::Ok();
    Status s = ErrnoStatus("close " + path_, errno);
    std::remove(path_.c_str());
    return s;
  }

 private:
  std::string path_;
  FILE* file_ = nullptr;
};

template <typename T>
Status WriteVecs(const std::string& path, const T* data, int64_t rows, int dim) {
  FileWriter w;
  VLAKE_RETURN_IF_ERROR(w.Open(path, data, rows, dim));
  int32_t d = dim;
  for (int64_t r = 0; r < rows; ++r) {
    VLAKE_RETURN_IF_ERROR(w.Write(&d, sizeof(d)));
    VLAKE_RETURN_IF_ERROR(w.Write(data + r * dim, sizeof(T) * static_cast<size_t>(dim)));
  }
  return w.Finish();
}

}  // namespace

Result<DatasetFormat> FormatFromPath(std::string_view path) {
  std::string_view name = path;
  if (IsGzipPath(name)) name.remove_suffix(3);
  static constexpr std::pair<std::string_view, DatasetFormat> kExtensions[] = {
      {".fvecs", DatasetFormat::kFvecs}, {".bvecs", DatasetFormat::kBvecs},
      {".ivecs", DatasetFormat::kIvecs}, {".fbin", DatasetFormat::kFbin},
      {".u8bin", DatasetFormat::kU8bin}, {".i8bin", DatasetFormat::kI8bin},
      {".npy", DatasetFormat::kNpy},     {".csv", DatasetFormat::kCsv},
      {".idx", DatasetFormat::kIdx}};
  for (const auto& [ext, format] : kExtensions) {
    if (EndsWithIgnoreCase(name, ext)) return format;
  }
  // MNIST's own names: train-images-idx3-ubyte, t10k-labels-idx1-ubyte.
  if (EndsWithIgnoreCase(name, "-ubyte") && name.size() >= 10 &&
      EndsWithIgnoreCase(name.substr(0, name.size() - 7), "idx") &&
      std::isdigit(static_cast<unsigned char>(name[name.size() - 7]))) {
    return DatasetFormat::kIdx;
  }
  return Status(Code::kInvalidArgument,
                "cannot tell the format of '" + std::string(path) +
                    "' from its extension (want .fvecs, .bvecs, .ivecs, .fbin, .u8bin, .i8bin, "
                    ".npy, .csv, .idx or idxN-ubyte, optionally + .gz)");
}

Result<std::unique_ptr<VectorFileReader>> VectorFileReader::Open(
    const std::string& path, std::optional<DatasetFormat> format,
    std::string_view csv_vector_column) {
  if (!format) {
    VLAKE_ASSIGN_OR_RETURN(format, FormatFromPath(path));
  }
  if (!csv_vector_column.empty() && *format != DatasetFormat::kCsv) {
    return Invalid(path, "a vector column name applies only to CSV files");
  }
  VLAKE_ASSIGN_OR_RETURN(std::unique_ptr<ByteSource> src, ByteSource::Open(path, IsGzipPath(path)));
  switch (*format) {
    case DatasetFormat::kFvecs:
      return VecsReader::Open(path, std::move(src), Elem::kF32);
    case DatasetFormat::kBvecs:
      return VecsReader::Open(path, std::move(src), Elem::kU8);
    case DatasetFormat::kIvecs:
      return VecsReader::Open(path, std::move(src), Elem::kI32);
    case DatasetFormat::kFbin:
      return OpenBin(path, std::move(src), Elem::kF32);
    case DatasetFormat::kU8bin:
      return OpenBin(path, std::move(src), Elem::kU8);
    case DatasetFormat::kI8bin:
      return OpenBin(path, std::move(src), Elem::kI8);
    case DatasetFormat::kNpy:
      return OpenNpy(path, std::move(src));
    case DatasetFormat::kCsv:
      return CsvReader::Open(path, std::move(src), csv_vector_column);
    case DatasetFormat::kIdx:
      return OpenIdx(path, std::move(src));
  }
  return Invalid(path, "unknown format");
}

Result<VectorBatch> ReadVectors(const std::string& path, int64_t limit) {
  VLAKE_ASSIGN_OR_RETURN(std::unique_ptr<VectorFileReader> reader, VectorFileReader::Open(path));
  VectorBatch all, batch;
  all.dim = reader->dim();
  while (limit < 0 || all.rows < limit) {
    int64_t want = limit < 0 ? INT64_MAX : limit - all.rows;
    VLAKE_RETURN_IF_ERROR(reader->Next(want, &batch));
    if (batch.rows == 0) break;
    all.vectors.insert(all.vectors.end(), batch.vectors.begin(), batch.vectors.end());
    if (all.rows == 0) {
      all.columns = std::move(batch.columns);
    } else {
      for (size_t c = 0; c < all.columns.size(); ++c) {
        auto& to = all.columns[c].values;
        auto& from = batch.columns[c].values;
        to.insert(to.end(), std::make_move_iterator(from.begin()),
                  std::make_move_iterator(from.end()));
      }
    }
    all.rows += batch.rows;
  }
  return all;
}

Status WriteFvecs(const std::string& path, const float* data, int64_t rows, int dim) {
  return WriteVecs(path, data, rows, dim);
}

Status WriteIvecs(const std::string& path, const int32_t* data, int64_t rows, int dim) {
  return WriteVecs(path, data, rows, dim);
}

Status WriteFbin(const std::string& path, const float* data, int64_t rows, int dim) {
  if (rows > UINT32_MAX) return Invalid(path, "fbin holds at most 2^32-1 rows");
  FileWriter w;
  VLAKE_RETURN_IF_ERROR(w.Open(path, data, rows, dim));
  uint32_t header[2] = {static_cast<uint32_t>(rows), static_cast<uint32_t>(dim)};
  VLAKE_RETURN_IF_ERROR(w.Write(header, sizeof(header)));
  VLAKE_RETURN_IF_ERROR(w.Write(data, sizeof(float) * static_cast<size_t>(rows) * dim));
  return w.Finish();
}

Status WriteNpy(const std::string& path, const float* data, int64_t rows, int dim) {
  FileWriter w;
  VLAKE_RETURN_IF_ERROR(w.Open(path, data, rows, dim));
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) +
                     ", " + std::to_string(dim) + "), }";
  // NumPy pads the header with spaces and a newline so the data starts 64-byte aligned.
  size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  uint16_t header_bytes = static_cast<uint16_t>(dict.size());
  VLAKE_RETURN_IF_ERROR(w.Write("\x93NUMPY\x01\x00", 8));
  VLAKE_RETURN_IF_ERROR(w.Write(&header_bytes, sizeof(header_bytes)));
  VLAKE_RETURN_IF_ERROR(w.Write(dict.data(), dict.size()));
  VLAKE_RETURN_IF_ERROR(w.Write(data, sizeof(float) * static_cast<size_t>(rows) * dim));
  return w.Finish();
}

}  // namespace vlake::vector
