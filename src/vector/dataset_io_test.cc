#include "vector/dataset_io.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include "common/testing.h"
#include "vector/types.h"

namespace vlake::vector {
namespace {

using ::vlake::testing::TempDir;

std::vector<float> RandomVectors(int64_t rows, int dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> v(static_cast<size_t>(rows) * dim);
  for (float& x : v) x = dist(rng);
  return v;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

void WriteGzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Appends the little-endian bytes of v.
template <typename T>
void Put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(v));
}

// A hand-built .npy v1.0 file: header dict as given (padded like NumPy), then `data`.
std::string Npy(const std::string& dict, const std::string& data, int version = 1) {
  std::string header = dict;
  size_t prefix = version == 1 ? 10 : 12;
  header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back(static_cast<char>(version));
  out.push_back('\0');
  if (version == 1) {
    Put(&out, static_cast<uint16_t>(header.size()));
  } else {
    Put(&out, static_cast<uint32_t>(header.size()));
  }
  return out + header + data;
}

// Reads the file batch by batch (max_rows each), checking that every batch is full but the last.
Result<VectorBatch> ReadInBatches(const std::string& path, int64_t max_rows,
                                  std::string_view vector_column = "") {
  VLAKE_ASSIGN_OR_RETURN(auto reader, VectorFileReader::Open(path, std::nullopt, vector_column));
  VectorBatch all, batch;
  all.dim = reader->dim();
  bool short_seen = false;
  for (;;) {
    VLAKE_RETURN_IF_ERROR(reader->Next(max_rows, &batch));
    EXPECT_EQ(batch.dim, reader->dim());
    EXPECT_EQ(batch.vectors.size(), static_cast<size_t>(batch.rows * batch.dim));
    if (batch.rows == 0) break;
    EXPECT_FALSE(short_seen) << "a short batch before the end";
    short_seen = batch.rows < max_rows;
    all.vectors.insert(all.vectors.end(), batch.vectors.begin(), batch.vectors.end());
    if (all.rows == 0) {
      all.columns = batch.columns;
    } else {
      for (size_t c = 0; c < batch.columns.size(); ++c) {
        auto& v = all.columns[c].values;
        v.insert(v.end(), batch.columns[c].values.begin(), batch.columns[c].values.end());
      }
    }
    all.rows += batch.rows;
  }
  // The end is sticky.
  VLAKE_RETURN_IF_ERROR(reader->Next(max_rows, &batch));
  EXPECT_EQ(batch.rows, 0);
  return all;
}

// The error message of opening and fully reading `path` (empty when it succeeds).
std::string ReadError(const std::string& path, std::string_view vector_column = "") {
  auto r = ReadInBatches(path, 3, vector_column);
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument) << r.error().ToString();
  return r.error().message();
}

#define EXPECT_ERROR_HAS(path, text)                                            \
  do {                                                                          \
    std::string message_ = ReadError(path);                                     \
    EXPECT_NE(message_.find(text), std::string::npos) << "error: " << message_; \
  } while (0)

TEST(DatasetFormat, FromPath) {
  auto is = [](std::string_view path, DatasetFormat want) {
    auto f = FormatFromPath(path);
    return f.ok() && *f == want;
  };
  EXPECT_TRUE(is("/data/sift_base.fvecs", DatasetFormat::kFvecs));
  EXPECT_TRUE(is("bigann_base.BVECS", DatasetFormat::kBvecs));
  EXPECT_TRUE(is("gt.ivecs.gz", DatasetFormat::kIvecs));
  EXPECT_TRUE(is("base.1B.fbin", DatasetFormat::kFbin));
  EXPECT_TRUE(is("base.1B.u8bin.gz", DatasetFormat::kU8bin));
  EXPECT_TRUE(is("query.i8bin", DatasetFormat::kI8bin));
  EXPECT_TRUE(is("emb.npy", DatasetFormat::kNpy));
  EXPECT_TRUE(is("emb.csv.GZ", DatasetFormat::kCsv));
  EXPECT_TRUE(is("x.idx", DatasetFormat::kIdx));
  EXPECT_TRUE(is("train-images-idx3-ubyte.gz", DatasetFormat::kIdx));
  EXPECT_TRUE(is("t10k-labels-idx1-ubyte", DatasetFormat::kIdx));
  EXPECT_TRUE(is("images.idx3-ubyte", DatasetFormat::kIdx));
  EXPECT_CODE(FormatFromPath("vectors.parquet"), Code::kInvalidArgument);
  EXPECT_CODE(FormatFromPath("vectors"), Code::kInvalidArgument);
  EXPECT_CODE(FormatFromPath(".gz"), Code::kInvalidArgument);
  EXPECT_CODE(FormatFromPath("x-ubyte"), Code::kInvalidArgument);
}

TEST(DatasetIo, WritersRoundTrip) {
  TempDir dir;
  const int64_t rows = 37;
  const int dim = 5;
  std::vector<float> data = RandomVectors(rows, dim, 1);
  std::vector<std::string> paths = {dir.path() + "/a.fvecs", dir.path() + "/a.fbin",
                                    dir.path() + "/a.npy"};
  ASSERT_OK(WriteFvecs(paths[0], data.data(), rows, dim));
  ASSERT_OK(WriteFbin(paths[1], data.data(), rows, dim));
  ASSERT_OK(WriteNpy(paths[2], data.data(), rows, dim));
  for (const std::string& path : paths) {
    SCOPED_TRACE(path);
    auto reader = VectorFileReader::Open(path);
    ASSERT_OK(reader);
    EXPECT_EQ((*reader)->dim(), dim);
    EXPECT_EQ((*reader)->total_rows(), rows);
    EXPECT_EQ((*reader)->file_bytes(), static_cast<int64_t>(ReadFile(path).size()));
    VectorBatch batch;
    ASSERT_OK((*reader)->Next(1000, &batch));
    EXPECT_EQ(batch.rows, rows);
    EXPECT_EQ(batch.vectors, data);
    EXPECT_TRUE(batch.columns.empty());
    ASSERT_OK((*reader)->Next(1000, &batch));
    EXPECT_EQ(batch.rows, 0);
    EXPECT_EQ((*reader)->bytes_read(), (*reader)->file_bytes());
  }
  // NumPy aligns the data to 64 bytes.
  EXPECT_EQ((ReadFile(paths[2]).size() - rows * dim * 4) % 64, 0u);

  std::vector<int32_t> ids = {1, -2, 3, 4, 5, 2147483647};
  ASSERT_OK(WriteIvecs(dir.path() + "/gt.ivecs", ids.data(), 2, 3));
  auto gt = ReadVectors(dir.path() + "/gt.ivecs");
  ASSERT_OK(gt);
  EXPECT_EQ(gt->rows, 2);
  EXPECT_EQ(gt->dim, 3);
  EXPECT_EQ(gt->vectors, (std::vector<float>{1, -2, 3, 4, 5, 2147483648.0f}));
}

TEST(DatasetIo, BatchesReturnEveryRowInOrder) {
  TempDir dir;
  const int64_t rows = 23;
  const int dim = 3;
  std::vector<float> data = RandomVectors(rows, dim, 2);
  ASSERT_OK(WriteFvecs(dir.path() + "/a.fvecs", data.data(), rows, dim));
  ASSERT_OK(WriteFbin(dir.path() + "/a.fbin", data.data(), rows, dim));
  ASSERT_OK(WriteNpy(dir.path() + "/a.npy", data.data(), rows, dim));
  std::string csv;
  for (int64_t r = 0; r < rows; ++r) {
    for (int d = 0; d < dim; ++d) csv += (d ? "," : "") + std::to_string(data[r * dim + d]);
    csv += "\n";
  }
  WriteFile(dir.path() + "/a.csv", csv);
  WriteGzip(dir.path() + "/b.fvecs.gz", ReadFile(dir.path() + "/a.fvecs"));
  for (const char* name : {"/a.fvecs", "/a.fbin", "/a.npy", "/b.fvecs.gz", "/a.csv"}) {
    for (int64_t max_rows : {1, 4, 23, 100}) {
      SCOPED_TRACE(std::string(name) + " max_rows " + std::to_string(max_rows));
      auto all = ReadInBatches(dir.path() + name, max_rows);
      ASSERT_OK(all);
      EXPECT_EQ(all->rows, rows);
      ASSERT_EQ(all->vectors.size(), data.size());
      for (size_t i = 0; i < data.size(); ++i) {
        // CSV holds std::to_string's 6 decimals.
        ASSERT_NEAR(all->vectors[i], data[i], std::string(name) == "/a.csv" ? 1e-6 : 0) << i;
      }
    }
  }
  auto first = ReadVectors(dir.path() + "/a.fbin", 5);
  ASSERT_OK(first);
  EXPECT_EQ(first->rows, 5);
  EXPECT_EQ(first->vectors, std::vector<float>(data.begin(), data.begin() + 5 * dim));
  auto none = ReadVectors(dir.path() + "/a.fvecs", 0);
  ASSERT_OK(none);
  EXPECT_EQ(none->rows, 0);
  EXPECT_EQ(none->dim, dim);
}

TEST(DatasetIo, NextBoundsEachBatch) {
  // 513 rows of kMaxDim bytes: 64 MiB of floats holds 512 of them.
  TempDir dir;
  std::string bin;
  Put<uint32_t>(&bin, 513);
  Put<uint32_t>(&bin, kMaxDim);
  for (int r = 0; r < 513; ++r) bin.append(kMaxDim, static_cast<char>(r & 0xff));
  WriteFile(dir.path() + "/big.u8bin", bin);
  auto reader = VectorFileReader::Open(dir.path() + "/big.u8bin");
  ASSERT_OK(reader);
  VectorBatch batch;
  ASSERT_OK((*reader)->Next(100000, &batch));
  EXPECT_EQ(batch.rows, 512);
  ASSERT_OK((*reader)->Next(100000, &batch));
  ASSERT_EQ(batch.rows, 1);
  EXPECT_EQ(batch.vectors[0], 0.0f);  // row 512 & 0xff
  EXPECT_CODE((*reader)->Next(0, &batch), Code::kInvalidArgument);
}

TEST(DatasetIo, HandWrittenBinaryFormats) {
  TempDir dir;
  std::string bvecs;
  for (int r = 0; r < 3; ++r) {
    Put<int32_t>(&bvecs, 4);
    for (int d = 0; d < 4; ++d) bvecs.push_back(static_cast<char>(250 + r + d));
  }
  WriteFile(dir.path() + "/a.bvecs", bvecs);
  auto b = ReadVectors(dir.path() + "/a.bvecs");
  ASSERT_OK(b);
  EXPECT_EQ(b->rows, 3);
  EXPECT_EQ(b->dim, 4);
  EXPECT_EQ(b->vectors[0], 250.0f);
  EXPECT_EQ(b->vectors[11], 255.0f);

  std::string u8bin, i8bin;
  for (std::string* s : {&u8bin, &i8bin}) {
    Put<uint32_t>(s, 2);
    Put<uint32_t>(s, 3);
    s->append("\x00\x01\x7f\x80\xfe\xff", 6);
  }
  WriteFile(dir.path() + "/a.u8bin", u8bin);
  WriteFile(dir.path() + "/a.i8bin", i8bin);
  auto u = ReadVectors(dir.path() + "/a.u8bin");
  ASSERT_OK(u);
  EXPECT_EQ(u->vectors, (std::vector<float>{0, 1, 127, 128, 254, 255}));
  auto i = ReadVectors(dir.path() + "/a.i8bin");
  ASSERT_OK(i);
  EXPECT_EQ(i->vectors, (std::vector<float>{0, 1, 127, -128, -2, -1}));

  // An empty fbin is valid: zero rows of a known dim.
  std::string empty;
  Put<uint32_t>(&empty, 0);
  Put<uint32_t>(&empty, 8);
  WriteFile(dir.path() + "/empty.fbin", empty);
  auto e = ReadVectors(dir.path() + "/empty.fbin");
  ASSERT_OK(e);
  EXPECT_EQ(e->rows, 0);
  EXPECT_EQ(e->dim, 8);
}

TEST(DatasetIo, VecsErrorsNameRowAndByte) {
  TempDir dir;
  std::vector<float> data = RandomVectors(4, 2, 3);
  const std::string good = dir.path() + "/good.fvecs";
  ASSERT_OK(WriteFvecs(good, data.data(), 4, 2));
  std::string bytes = ReadFile(good);  // 4 rows of 12 bytes

  std::string other_dim = bytes;
  other_dim[24] = 3;  // row 2 says dim 3
  WriteFile(dir.path() + "/dim.fvecs", other_dim);
  EXPECT_ERROR_HAS(dir.path() + "/dim.fvecs", "row 2 has dim 3, expected 2");

  WriteFile(dir.path() + "/cut.fvecs", bytes.substr(0, 43));
  EXPECT_ERROR_HAS(dir.path() + "/cut.fvecs", "truncated at byte 43");
  auto cut = VectorFileReader::Open(dir.path() + "/cut.fvecs");
  ASSERT_OK(cut);
  EXPECT_EQ((*cut)->total_rows(), std::nullopt);

  WriteFile(dir.path() + "/empty.fvecs", "");
  EXPECT_ERROR_HAS(dir.path() + "/empty.fvecs", "empty file");
  WriteFile(dir.path() + "/two.fvecs", bytes.substr(0, 2));
  EXPECT_ERROR_HAS(dir.path() + "/two.fvecs", "truncated at byte 2");
  for (int32_t dim : {0, -1, kMaxDim + 1}) {
    std::string bad;
    Put<int32_t>(&bad, dim);
    WriteFile(dir.path() + "/bad.ivecs", bad);
    EXPECT_ERROR_HAS(dir.path() + "/bad.ivecs", "dimension " + std::to_string(dim));
  }
}

TEST(DatasetIo, BinErrors) {
  TempDir dir;
  std::string bin;
  Put<uint32_t>(&bin, 2);
  Put<uint32_t>(&bin, 3);
  bin.append(24, '\0');
  WriteFile(dir.path() + "/long.fbin", bin + "x");
  EXPECT_ERROR_HAS(dir.path() + "/long.fbin", "file is 33 bytes but its header (2 rows x 3)");
  WriteFile(dir.path() + "/short.fbin", bin.substr(0, 31));
  EXPECT_ERROR_HAS(dir.path() + "/short.fbin", "needs 32");
  WriteFile(dir.path() + "/hdr.fbin", bin.substr(0, 5));
  EXPECT_ERROR_HAS(dir.path() + "/hdr.fbin", "truncated header");
  std::string zero_dim;
  Put<uint32_t>(&zero_dim, 1);
  Put<uint32_t>(&zero_dim, 0);
  WriteFile(dir.path() + "/zero.fbin", zero_dim);
  EXPECT_ERROR_HAS(dir.path() + "/zero.fbin", "dimension 0");
  std::string huge;
  Put<uint32_t>(&huge, 0xffffffff);
  Put<uint32_t>(&huge, kMaxDim);
  WriteFile(dir.path() + "/huge.fbin", huge);
  EXPECT_ERROR_HAS(dir.path() + "/huge.fbin", "but its header");

  // Compressed: the size is checked while reading.
  WriteGzip(dir.path() + "/long.fbin.gz", bin + "x");
  EXPECT_ERROR_HAS(dir.path() + "/long.fbin.gz", "unexpected data after the last row, at byte 32");
  WriteGzip(dir.path() + "/short.fbin.gz", bin.substr(0, 31));
  EXPECT_ERROR_HAS(dir.path() + "/short.fbin.gz", "truncated at byte 31");
  auto gz = VectorFileReader::Open(dir.path() + "/short.fbin.gz");
  ASSERT_OK(gz);
  EXPECT_EQ((*gz)->total_rows(), 2);  // from the header
}

TEST(DatasetIo, NpyDtypesAndVersions) {
  TempDir dir;
  std::string f8;
  for (double v : {1.5, -2.0, 3.25, 1e300}) Put(&f8, v);
  WriteFile(dir.path() + "/f8.npy",
            Npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", f8));
  auto a = ReadVectors(dir.path() + "/f8.npy");
  ASSERT_OK(a);
  EXPECT_EQ(a->rows, 2);
  EXPECT_EQ(a->dim, 2);
  EXPECT_EQ(a->vectors[2], 3.25f);
  EXPECT_TRUE(std::isinf(a->vectors[3]));  // kept as is: the database decides

  // Key order, double quotes, no trailing comma, Python 2 longs and a v2.0 header are all valid.
  WriteFile(dir.path() + "/u1.npy",
            Npy("{\"shape\": (3L,1L), \"fortran_order\": False, \"descr\": '|u1'}",
                std::string("\x00\x80\xff", 3), 2));
  auto b = ReadVectors(dir.path() + "/u1.npy");
  ASSERT_OK(b);
  EXPECT_EQ(b->rows, 3);
  EXPECT_EQ(b->dim, 1);
  EXPECT_EQ(b->vectors, (std::vector<float>{0, 128, 255}));

  std::string i8, i4;
  Put<int64_t>(&i8, -7);
  Put<int32_t>(&i4, 9);
  WriteFile(dir.path() + "/i8.npy",
            Npy("{'descr': '<i8', 'fortran_order': False, 'shape': (1, 1), }", i8, 3));
  WriteFile(dir.path() + "/i4.npy",
            Npy("{'descr': '<i4', 'fortran_order': False, 'shape': (1, 1), }", i4));
  auto c = ReadVectors(dir.path() + "/i8.npy");
  auto d = ReadVectors(dir.path() + "/i4.npy");
  ASSERT_OK(c);
  ASSERT_OK(d);
  EXPECT_EQ(c->vectors[0], -7.0f);
  EXPECT_EQ(d->vectors[0], 9.0f);
}

TEST(DatasetIo, NpyErrors) {
  TempDir dir;
  const std::string path = dir.path() + "/x.npy";
  std::string four(16, '\0');
  struct Case {
    std::string dict;
    std::string data;
    std::string error;
  } cases[] = {
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", four, "Fortran order"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", four, "shape (4,); want a 2-D"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 2), }", four, "shape (1, 2, 2);"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (), }", four, "shape ();"},
      {"{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", four, "dtype '>f4'"},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }", four, "dtype '<f2'"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }", four, "structured"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", four.substr(0, 15),
       "header (2 rows x 2) needs"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 0), }", "", "dimension 0"},
      {"{'descr': '<f4', 'fortran_order': False}", four, "needs the keys"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 2)}", four, "True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -2)}", four, "bad shape"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': 1}", four, "unexpected key"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (2, 2)}", four, "expected '}'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)} x", four, "after the closing"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 2)}", four,
       "bad shape"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775807, 2)}", four,
       "too many"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.dict);
    WriteFile(path, Npy(c.dict, c.data));
    EXPECT_ERROR_HAS(path, c.error);
  }
  WriteFile(path, std::string("\x93NUMPX\x01\x00", 8));
  EXPECT_ERROR_HAS(path, "bad magic");
  WriteFile(path, std::string("\x93NUMPY\x04\x00\x00\x00", 10));
  EXPECT_ERROR_HAS(path, "version 4.0");
  WriteFile(path, std::string("\x93NUMPY\x02\x00\xff\xff\xff\xff", 12));
  EXPECT_ERROR_HAS(path, "too large");
  WriteFile(path, std::string("\x93NUMPY\x01\x00\x50\x00{'descr'", 17));
  EXPECT_ERROR_HAS(path, "truncated npy header");
}

TEST(DatasetIo, CsvWithoutHeader) {
  TempDir dir;
  const std::string path = dir.path() + "/a.csv";
  // CRLF, a BOM, blank lines, spaces, signs, exponents and quoted numbers.
  WriteFile(path,
            "\xEF\xBB\xBF"
            "1, 2,3\r\n\r\n -4.5,+5e1,\"6\"\n\n7,8,9");
  auto a = ReadVectors(path);
  ASSERT_OK(a);
  EXPECT_EQ(a->rows, 3);
  EXPECT_EQ(a->dim, 3);
  EXPECT_EQ(a->vectors, (std::vector<float>{1, 2, 3, -4.5, 50, 6, 7, 8, 9}));
  EXPECT_TRUE(a->columns.empty());
  // Below float32's range rounds to zero (float64 exports hold such values); above is refused.
  WriteFile(path, "1e-50,-1e-400,1e-40\n");
  auto tiny = ReadVectors(path);
  ASSERT_OK(tiny);
  EXPECT_EQ(tiny->vectors[0], 0.0f);
  EXPECT_EQ(tiny->vectors[1], 0.0f);
  EXPECT_TRUE(std::signbit(tiny->vectors[1]));
  EXPECT_NEAR(tiny->vectors[2], 1e-40f, 1e-44f);
  auto reader = VectorFileReader::Open(path);
  ASSERT_OK(reader);
  EXPECT_EQ((*reader)->total_rows(), std::nullopt);

  WriteFile(path, "1,2,3\n4,5\n");
  EXPECT_ERROR_HAS(path, "line 2: 2 cells, expected 3");
  WriteFile(path, "1,2\n\n3,x\n");
  EXPECT_ERROR_HAS(path, "line 3: cell 2: 'x' is not a float32 number");
  WriteFile(path, "1,2\n3,1e99\n");
  EXPECT_ERROR_HAS(path, "line 2: cell 2: '1e99' is not a float32 number");
  WriteFile(path, "");
  EXPECT_ERROR_HAS(path, "empty file");
  WriteFile(path, "\n\n");
  EXPECT_ERROR_HAS(path, "empty file");
}

TEST(DatasetIo, CsvWithHeaderAndVectorColumn) {
  TempDir dir;
  const std::string path = dir.path() + "/a.csv";
  WriteFile(path,
            "id,title,embedding,price\n"
            "1,\"Hello, world\",\"[0.5, 1, -2]\",3.5\n"
            "2,\"say \"\"hi\"\"\nover two lines\",[1 ; 2 ; 3],\n"
            "3,plain,4 5 6,7\n"
            "4,unquoted brackets,[7,8,9],8\n");
  auto a = ReadInBatches(path, 3);
  ASSERT_OK(a);
  EXPECT_EQ(a->rows, 4);
  EXPECT_EQ(a->dim, 3);
  EXPECT_EQ(a->vectors, (std::vector<float>{0.5, 1, -2, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  ASSERT_EQ(a->columns.size(), 3u);
  EXPECT_EQ(a->columns[0].name, "id");
  EXPECT_EQ(a->columns[0].values, (std::vector<std::string>{"1", "2", "3", "4"}));
  EXPECT_EQ(a->columns[1].name, "title");
  EXPECT_EQ(a->columns[1].values,
            (std::vector<std::string>{"Hello, world", "say \"hi\"\nover two lines", "plain",
                                      "unquoted brackets"}));
  EXPECT_EQ(a->columns[2].name, "price");
  EXPECT_EQ(a->columns[2].values, (std::vector<std::string>{"3.5", "", "7", "8"}));

  // A named column may hold a single number per row.
  WriteFile(path, "a,b\n1,x\n2,y\n");
  auto named = ReadInBatches(path, 10, "a");
  ASSERT_OK(named);
  EXPECT_EQ(named->dim, 1);
  EXPECT_EQ(named->vectors, (std::vector<float>{1, 2}));
  ASSERT_EQ(named->columns.size(), 1u);
  EXPECT_EQ(named->columns[0].values, (std::vector<std::string>{"x", "y"}));
  EXPECT_NE(ReadError(path, "c").find("no column named 'c' (columns: a, b)"), std::string::npos);

  // A header of component names over numeric rows: every column is a component.
  WriteFile(path, "x0,x1\n1,2\n3,4\n");
  auto components = ReadVectors(path);
  ASSERT_OK(components);
  EXPECT_EQ(components->dim, 2);
  EXPECT_EQ(components->vectors, (std::vector<float>{1, 2, 3, 4}));
  EXPECT_TRUE(components->columns.empty());
}

TEST(DatasetIo, CsvErrorsNameTheLine) {
  TempDir dir;
  const std::string path = dir.path() + "/a.csv";
  // The record on line 4 starts after a quoted cell spanning lines 2-3.
  WriteFile(path, "id,v\n\"a\nb\",[1,2]\n3,[1,2,3]\n");
  EXPECT_ERROR_HAS(path, "line 4: vector has 3 components, expected 2");
  WriteFile(path, "id,v\n1,[1,2]\n2,[1,,2]\n");
  EXPECT_ERROR_HAS(path, "line 3: column 'v': empty element");
  WriteFile(path, "id,v\n1,[1,2]\n2,[1,2,]\n");
  EXPECT_ERROR_HAS(path, "line 3: column 'v': empty element");
  WriteFile(path, "id,v\n1,[1,2]\n2,[1,a]\n");
  EXPECT_ERROR_HAS(path, "line 3: column 'v': 'a' is not a float32 number");
  WriteFile(path, "id,v\n1,[1,2\n");
  EXPECT_ERROR_HAS(path, "line 2: column 'v': '[' without a closing ']'");
  WriteFile(path, "id,v\n1,[1,2]\n2\n");
  EXPECT_ERROR_HAS(path, "line 3: 1 cells, expected 2");
  WriteFile(path, "id,v\n1,\"[1,2]\n");
  EXPECT_ERROR_HAS(path, "line 2: quoted cell never closed");
  WriteFile(path, "id,v\n1,\"[1,2]\"x\n");
  EXPECT_ERROR_HAS(path, "line 2: unexpected 'x' after a closing quote");
  WriteFile(path, "id,v,w\n1,[1,2],3 4\n");
  EXPECT_ERROR_HAS(path, "more than one column looks like a vector (columns: id, v, w)");
  WriteFile(path, "id,name\n1,x\n");
  EXPECT_ERROR_HAS(path, "no column looks like a vector");
  WriteFile(path, "id,v\n");
  EXPECT_ERROR_HAS(path, "header but no data rows");
  WriteFile(path, "id,v\n1,[]\n");
  EXPECT_ERROR_HAS(path, "dimension 0");
  WriteFile(path, "x,\"[1,2]\"\n");
  EXPECT_ERROR_HAS(path, "line 1: first line holds a vector");
  WriteFile(path, "1,2\n");
  auto named = VectorFileReader::Open(path, std::nullopt, "v");
  EXPECT_CODE(named, Code::kInvalidArgument);
}

TEST(DatasetIo, GzipStreams) {
  TempDir dir;
  const int64_t rows = 1000;
  const int dim = 16;
  std::vector<float> data = RandomVectors(rows, dim, 4);
  const std::string plain = dir.path() + "/a.fvecs";
  ASSERT_OK(WriteFvecs(plain, data.data(), rows, dim));
  std::string bytes = ReadFile(plain);
  const std::string gz = dir.path() + "/a.fvecs.gz";
  WriteGzip(gz, bytes);

  auto reader = VectorFileReader::Open(gz);
  ASSERT_OK(reader);
  EXPECT_EQ((*reader)->dim(), dim);
  EXPECT_EQ((*reader)->total_rows(), std::nullopt);
  EXPECT_EQ((*reader)->file_bytes(), static_cast<int64_t>(ReadFile(gz).size()));
  auto all = ReadInBatches(gz, 64);
  ASSERT_OK(all);
  EXPECT_EQ(all->rows, rows);
  EXPECT_EQ(all->vectors, data);

  // A cut-off gzip stream is an error, not a short file.
  std::string compressed = ReadFile(gz);
  WriteFile(dir.path() + "/cut.fvecs.gz", compressed.substr(0, compressed.size() / 2));
  EXPECT_ERROR_HAS(dir.path() + "/cut.fvecs.gz", "gzip stream is truncated");
  std::string corrupt = compressed;
  for (size_t i = 100; i < 200; ++i) corrupt[i] = static_cast<char>(corrupt[i] ^ 0x5a);
  WriteFile(dir.path() + "/bad.fvecs.gz", corrupt);
  EXPECT_NE(ReadError(dir.path() + "/bad.fvecs.gz"), "");

  // CSV through gzip too.
  WriteGzip(dir.path() + "/a.csv.gz", "v\n[1,2]\n[3,4]\n");
  auto csv = ReadVectors(dir.path() + "/a.csv.gz");
  ASSERT_OK(csv);
  EXPECT_EQ(csv->vectors, (std::vector<float>{1, 2, 3, 4}));
}

std::string Idx(uint8_t type, std::vector<uint32_t> sizes, const std::string& data) {
  std::string out = {'\0', '\0', static_cast<char>(type), static_cast<char>(sizes.size())};
  for (uint32_t s : sizes) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(s >> shift));
  }
  return out + data;
}

TEST(DatasetIo, IdxImagesAndLabels) {
  TempDir dir;
  std::string pixels;
  for (int i = 0; i < 2 * 3 * 2; ++i) pixels.push_back(static_cast<char>(i * 20));
  WriteFile(dir.path() + "/img.idx", Idx(0x08, {2, 3, 2}, pixels));
  auto img = ReadVectors(dir.path() + "/img.idx");
  ASSERT_OK(img);
  EXPECT_EQ(img->rows, 2);
  EXPECT_EQ(img->dim, 6);
  EXPECT_EQ(img->vectors[11], 220.0f);
  WriteGzip(dir.path() + "/t-labels-idx1-ubyte.gz", Idx(0x08, {3}, "\x01\x02\x09"));
  auto labels = VectorFileReader::Open(dir.path() + "/t-labels-idx1-ubyte.gz");
  ASSERT_OK(labels);
  EXPECT_EQ((*labels)->dim(), 1);
  EXPECT_EQ((*labels)->total_rows(), 3);  // the header says so, even compressed

  const std::string path = dir.path() + "/x.idx";
  WriteFile(path, Idx(0x0d, {1, 1}, "abcd"));
  EXPECT_ERROR_HAS(path, "IDX element type 0x0d is not supported");
  WriteFile(path, std::string("\x01\x00\x08\x01", 4));
  EXPECT_ERROR_HAS(path, "bad magic");
  WriteFile(path, Idx(0x08, {}, ""));
  EXPECT_ERROR_HAS(path, "zero dimensions");
  WriteFile(path, Idx(0x08, {1, 200, 200}, ""));
  EXPECT_ERROR_HAS(path, "dimension 40000");
  WriteFile(path, Idx(0x08, {2, 2}, "abc"));
  EXPECT_ERROR_HAS(path, "file is 15 bytes but its header (2 rows x 2) needs 16");
  WriteFile(path, Idx(0x08, {2, 2}, "").substr(0, 9));
  EXPECT_ERROR_HAS(path, "truncated IDX header");
}

TEST(DatasetIo, OpenErrors) {
  TempDir dir;
  auto missing = VectorFileReader::Open(dir.path() + "/none.fvecs");
  EXPECT_CODE(missing, Code::kNotFound);
  EXPECT_NE(missing.error().message().find(dir.path() + "/none.fvecs"), std::string::npos);
  mkdir((dir.path() + "/d.fvecs").c_str(), 0755);
  EXPECT_CODE(VectorFileReader::Open(dir.path() + "/d.fvecs"), Code::kIoError);
  EXPECT_CODE(VectorFileReader::Open(dir.path() + "/x.txt"), Code::kInvalidArgument);
  std::vector<float> one = {1};
  ASSERT_OK(WriteFbin(dir.path() + "/a.fbin", one.data(), 1, 1));
  EXPECT_CODE(VectorFileReader::Open(dir.path() + "/a.fbin", std::nullopt, "emb"),
              Code::kInvalidArgument);
  // An explicit format overrides the extension.
  auto as_fbin = VectorFileReader::Open(dir.path() + "/a.fbin", DatasetFormat::kFbin);
  ASSERT_OK(as_fbin);
  EXPECT_CODE(VectorFileReader::Open(dir.path() + "/a.fbin", DatasetFormat::kNpy),
              Code::kInvalidArgument);

  EXPECT_CODE(WriteFvecs(dir.path() + "/b.fvecs", one.data(), 1, 0), Code::kInvalidArgument);
  EXPECT_CODE(WriteNpy(dir.path() + "/b.npy", one.data(), -1, 1), Code::kInvalidArgument);
  EXPECT_CODE(WriteFbin(dir.path() + "/no/such/dir.fbin", one.data(), 1, 1), Code::kNotFound);
}

// The real Fashion-MNIST files (apt-get install dataset-fashion-mnist).
TEST(DatasetIo, FashionMnist) {
  const std::string base = "/usr/share/datasets/fashion-mnist/";
  struct File {
    const char* name;
    int64_t rows;
    int dim;
  } files[] = {{"train-images-idx3-ubyte.gz", 60000, 784},
               {"t10k-images-idx3-ubyte.gz", 10000, 784},
               {"train-labels-idx1-ubyte.gz", 60000, 1}};
  struct stat st;
  if (stat((base + files[0].name).c_str(), &st) != 0) {
    VLAKE_SKIP_UNLESS_CI("no Fashion-MNIST in " << base << " (Debian dataset-fashion-mnist)");
  }
  for (const File& f : files) {
    SCOPED_TRACE(f.name);
    auto reader = VectorFileReader::Open(base + f.name);
    ASSERT_OK(reader);
    EXPECT_EQ((*reader)->total_rows(), f.rows);
    EXPECT_EQ((*reader)->dim(), f.dim);
    auto all = ReadVectors(base + f.name);
    ASSERT_OK(all);
    EXPECT_EQ(all->rows, f.rows);
    EXPECT_EQ(all->dim, f.dim);
    auto [lo, hi] = std::minmax_element(all->vectors.begin(), all->vectors.end());
    EXPECT_EQ(*lo, 0.0f);
    EXPECT_EQ(*hi, f.dim == 1 ? 9.0f : 255.0f);
  }
}

}  // namespace
}  // namespace vlake::vector
