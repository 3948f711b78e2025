// Fuzzes the vector file readers (src/vector/dataset_io.h).
//
// The input becomes the content of an in-memory file (memfd), read fully in small batches as
// each format in turn (any status is fine; crashes and sanitizer reports are not). Properties:
// every batch holds rows*dim floats of the reader's dim, and a file that reads without error
// yields exactly the rows its header announced.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "vector/dataset_io.h"
#include "vector/types.h"

namespace {

using vlake::vector::DatasetFormat;

void ReadAll(const std::string& path, DatasetFormat format, std::string_view vector_column) {
  auto reader = vlake::vector::VectorFileReader::Open(path, format, vector_column);
  if (!reader.ok()) return;
  const int dim = (*reader)->dim();
  if (dim < 1 || dim > vlake::vector::kMaxDim) __builtin_trap();
  vlake::vector::VectorBatch batch;
  int64_t rows = 0;
  for (;;) {
    if (!(*reader)->Next(5, &batch).ok()) return;
    if (batch.rows < 0 || batch.rows > 5 || batch.dim != dim ||
        batch.vectors.size() != static_cast<size_t>(batch.rows) * static_cast<size_t>(dim)) {
      __builtin_trap();
    }
    for (const auto& column : batch.columns) {
      if (column.values.size() != static_cast<size_t>(batch.rows)) __builtin_trap();
    }
    if (batch.rows == 0) break;
    rows += batch.rows;
  }
  if (auto total = (*reader)->total_rows(); total && *total != rows) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int fd = memfd_create("dataset_io_fuzz", MFD_CLOEXEC);
  if (fd < 0) return 0;
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  // The readers open by path; an explicit format stands in for the extension.
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  for (DatasetFormat format : {DatasetFormat::kFvecs, DatasetFormat::kBvecs, DatasetFormat::kIvecs,
                               DatasetFormat::kFbin, DatasetFormat::kU8bin, DatasetFormat::kI8bin,
                               DatasetFormat::kNpy, DatasetFormat::kCsv, DatasetFormat::kIdx}) {
    ReadAll(path, format, "");
  }
  ReadAll(path, DatasetFormat::kCsv, "v");
  close(fd);
  return 0;
}
