// Fuzzes the segment decoder, the head-only layout reader and the index file header reader: any
// input must give a clean Status, and a segment that decodes must be readable end to end within its
// bounds.
#include <cstddef>
#include <cstdint>
#include <string>

#include "vector/index.h"
#include "vector/segment.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vlake::vector;
  std::string bytes(reinterpret_cast<const char*>(data), size);
  auto seg = Segment::Decode(bytes);
  if (seg.ok()) {
    uint64_t sink = 0;
    for (const FieldSchema& f : (*seg)->fields()) {
      ColumnView v = *(*seg)->Column(f.name);
      for (int64_t r = 0; r < v.rows; ++r) {
        switch (StorageOf(v.type)) {
          case Storage::kInt64:
            sink += v.int64s()[r];
            break;
          case Storage::kDouble:
            sink += static_cast<uint64_t>(v.doubles()[r] != 0);
            break;
          case Storage::kBool:
            sink += v.bools()[r];
            break;
          case Storage::kBytes:
            sink += v.varchar(r).size();
            break;
          case Storage::kFloats:
            sink += v.floats()[r * v.dim + v.dim - 1] > 0;
            break;
        }
      }
    }
    if (sink == 0xdeadbeef) return 1;  // keep the reads
  }
  // The head-only reader (GPU builds): any head length and claimed object size; a layout that
  // parses must keep every region inside the claimed object.
  auto head = SegmentHeadBytes(bytes.data(), bytes.size());
  if (head.ok()) {
    uint64_t object_bytes = size + (size > 0 ? data[0] % 3 : 0) * 64;
    auto layout = ParseSegmentLayout(bytes.data(), bytes.size(), object_bytes);
    if (layout.ok()) {
      for (const ColumnExtent& c : layout->columns) {
        if (c.data_offset > object_bytes || c.data_bytes > object_bytes - c.data_offset) {
          __builtin_trap();
        }
      }
    }
  }
  (void)ReadIndexFileInfo(bytes);
  return 0;
}
