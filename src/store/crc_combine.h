// CRC concatenation: the CRC of A||B from crc(A), crc(B) and len(B), without the bytes.
//
// CompleteMultipartUpload uses it for FULL_OBJECT checksums (CRC32, CRC32C, CRC64NVME): the
// object's checksum is the CRC of all parts' bytes, derived from the per-part CRCs.
//
// Why it works: a reflected CRC with init == xorout (all ones for the three algorithms) is an
// affine function of the message, and crc(A||B) = (crc(A) * x^(8*len(B)) mod P) ^ crc(B) in
// GF(2)[x]. x^(8n) mod P comes from repeated squaring, so the cost is O(log n) multiplications
// of width-bit polynomials, independent of the data size.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/hash.h"

namespace vlake::store {

// Values are the CRC register as Crc32Update / Crc32cUpdate / Crc64NvmeUpdate return it.
uint64_t CrcCombine(ChecksumAlgorithm algorithm, uint64_t crc_a, uint64_t crc_b, uint64_t len_b);

// Whether the algorithm is a CRC that CrcCombine supports (SHA digests do not combine).
bool IsCombinableCrc(ChecksumAlgorithm algorithm);

// Raw big-endian digest bytes <-> register value; nullopt when the length is wrong.
std::optional<uint64_t> CrcFromDigest(ChecksumAlgorithm algorithm, std::string_view raw);
std::string CrcToDigest(ChecksumAlgorithm algorithm, uint64_t crc);

}  // namespace vlake::store
