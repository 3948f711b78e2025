// Readers (and a few writers) for the vector data files that `vlake insert --from FILE` and the
// benchmarks load: TEXMEX .fvecs/.bvecs/.ivecs, big-ann-benchmarks .fbin/.u8bin/.i8bin, NumPy
// .npy, CSV and MNIST-style IDX, each optionally gzip-compressed (.gz). Layouts and the CSV
// rules are documented in docs/datasets.md.
//
// A reader streams: Open reads only the header (CSV: the header line and the first data row, to
// learn the dimension), and Next holds one batch in memory, so a 10 GB file loads in bounded
// memory. Every element type is converted to float32, values are kept as they are (NaN and Inf
// included; the database rejects NaN itself).
//
// Errors: InvalidArgument for bad content, naming the file and the row, line or byte at fault;
// NotFound / IoError (with strerror) when the file cannot be opened or read.
//
// Thread-safety: a VectorFileReader is used by one thread at a time; distinct readers are
// independent. The free functions share no state.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vlake/status.h"

namespace vlake::vector {

enum class DatasetFormat { kFvecs, kBvecs, kIvecs, kFbin, kU8bin, kI8bin, kNpy, kCsv, kIdx };

// Picks the format by extension, case-insensitively, ignoring a trailing ".gz": .fvecs .bvecs
// .ivecs .fbin .u8bin .i8bin .npy .csv .idx, and MNIST names ending in idxN-ubyte
// ("train-images-idx3-ubyte.gz"). InvalidArgument for anything else.
Result<DatasetFormat> FormatFromPath(std::string_view path);

// The raw (unquoted) text cells of one non-vector CSV column for the current batch.
struct CsvColumn {
  std::string name;                 // from the header row
  std::vector<std::string> values;  // one per row of the batch
};

struct VectorBatch {
  int64_t rows = 0;
  int dim = 0;
  std::vector<float> vectors;      // rows*dim, row-major
  std::vector<CsvColumn> columns;  // CSV with a header and a vector column only: the others
};

class VectorFileReader {
 public:
  // Opens `path` and reads its header. `format` defaults to FormatFromPath(path); the file is
  // decompressed when the path ends in ".gz" whatever the format. `csv_vector_column` names the
  // CSV column holding the vectors (empty: detect it); it is an error for other formats.
  static Result<std::unique_ptr<VectorFileReader>> Open(
      const std::string& path, std::optional<DatasetFormat> format = std::nullopt,
      std::string_view csv_vector_column = "");

  virtual ~VectorFileReader() = default;

  // Components per row, 1..kMaxDim; fixed for the whole file.
  virtual int dim() const = 0;
  // Row count when the file states it or its size implies it: binary formats, and for gzip
  // files the formats whose header holds the count (fbin, npy, idx). nullopt for CSV and for
  // compressed or non-seekable .fvecs/.bvecs/.ivecs.
  virtual std::optional<int64_t> total_rows() const = 0;
  // Bytes taken from the file so far (compressed bytes for .gz), against file_bytes(), for
  // progress bars. file_bytes() is 0 when the file is not a regular file (a pipe).
  virtual int64_t bytes_read() const = 0;
  virtual int64_t file_bytes() const = 0;

  // Replaces *batch with the next rows, at most max_rows (> 0) and about 64 MiB of floats per
  // call, so a batch may be shorter than max_rows before the end. batch->rows == 0 means end of
  // file. After an error the reader must not be used further.
  virtual Status Next(int64_t max_rows, VectorBatch* batch) = 0;
};

// Reads the whole file, or only its first `limit` rows when limit >= 0.
Result<VectorBatch> ReadVectors(const std::string& path, int64_t limit = -1);

// Writers for tests and benchmarks. Each creates or truncates `path`, writes rows*dim values
// (row-major) and removes the partial file on failure. 1 <= dim <= kMaxDim.
Status WriteFvecs(const std::string& path, const float* data, int64_t rows, int dim);
Status WriteFbin(const std::string& path, const float* data, int64_t rows, int dim);
// Ground truth neighbour ids: one row of `dim` int32 ids per query.
Status WriteIvecs(const std::string& path, const int32_t* data, int64_t rows, int dim);
// NumPy v1.0, dtype '<f4', shape (rows, dim), C order.
Status WriteNpy(const std::string& path, const float* data, int64_t rows, int dim);

}  // namespace vlake::vector
