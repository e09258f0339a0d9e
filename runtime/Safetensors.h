//===- Safetensors.h - read and write .safetensors files ---------*- C++ -*-===//
//
// The safetensors format (Hugging Face): an 8-byte little-endian header length
// N, N bytes of JSON naming every tensor (dtype, shape, data_offsets [begin,
// end) relative to the data that follows the header), then the data. Optional
// "__metadata__" maps strings to strings.
//
// SafetensorsFile maps a file read-only and validates the whole header before
// any tensor can be read, so that a loader never discovers a corrupt entry
// halfway through an upload. SafetensorsWriter produces files the way Hugging
// Face's writer does (header padded with spaces to a multiple of 8 bytes, data
// packed without holes), generating tensor bytes in parallel straight into the
// output and replacing the destination only once the file is complete.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_SAFETENSORS_H
#define DSV3_RUNTIME_SAFETENSORS_H

#include "runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3 {

/// The element types safetensors names.
enum class Dtype {
  F64,
  F32,
  F16,
  BF16,
  F8_E4M3, ///< float8_e4m3fn: no infinities, NaN is 0x7F/0xFF, max 448
  F8_E5M2,
  I64,
  I32,
  I16,
  I8,
  U8,
  BOOL,
};

/// The safetensors name of `dtype` ("BF16", "F8_E4M3", ...).
const char *dtypeName(Dtype dtype);
/// The dtype called `name`, or nullopt for a name safetensors does not define.
std::optional<Dtype> parseDtype(std::string_view name);
/// Bytes per element.
std::size_t dtypeSize(Dtype dtype);
/// Every dtype name, comma separated, for messages.
const char *allDtypeNames();

/// "[7168, 576]", "[]" for a scalar: how shapes appear in messages and in
/// `dsv3c --emit=weights`.
std::string formatShape(const std::vector<int64_t> &shape);

/// numel(shape) × dtypeSize(dtype), or nullopt when a dimension is negative or
/// the product does not fit in 64 bits.
std::optional<uint64_t> tensorByteSize(Dtype dtype,
                                       const std::vector<int64_t> &shape);

/// A read-only view of bytes.
struct ByteView {
  const std::uint8_t *data = nullptr;
  std::size_t size = 0;
};

/// One tensor of a safetensors file.
struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<int64_t> shape;
  /// `data_offsets` as stored: relative to the first byte after the header.
  uint64_t dataBegin = 0, dataEnd = 0;
  /// The tensor's bytes inside the file mapping; valid while the file is open.
  ByteView bytes;

  uint64_t numel() const;
};

/// A safetensors file, mapped read-only and fully validated.
class SafetensorsFile {
public:
  /// Maps `path` and validates its header: the file holds the 8-byte length
  /// and the header; the header is a JSON object (at most 100 MB) whose
  /// entries each have a known dtype, a shape of non-negative integers and
  /// data_offsets that lie inside the data, match numel × dtype size, do not
  /// overlap and leave no hole (as Hugging Face's reader requires); an optional
  /// "__metadata__" object of strings. Each failure is one error naming the
  /// file, the tensor and the field.
  static StatusOr<SafetensorsFile> open(const std::string &path);

  SafetensorsFile(SafetensorsFile &&other) noexcept;
  SafetensorsFile &operator=(SafetensorsFile &&other) noexcept;
  SafetensorsFile(const SafetensorsFile &) = delete;
  SafetensorsFile &operator=(const SafetensorsFile &) = delete;
  ~SafetensorsFile();

  const std::string &path() const { return path_; }
  /// The tensor called `name`, or nullptr.
  const TensorInfo *find(std::string_view name) const;
  /// Every tensor, in the order of their data in the file.
  const std::vector<TensorInfo> &tensors() const { return tensors_; }
  /// "__metadata__" (empty when the file has none).
  const std::map<std::string, std::string> &metadata() const {
    return metadata_;
  }
  uint64_t fileSize() const { return mappingSize_; }
  /// N, the length of the JSON header (padding included).
  uint64_t headerSize() const { return headerSize_; }

private:
  SafetensorsFile() = default;
  void unmap();

  std::string path_;
  void *mapping_ = nullptr;
  uint64_t mappingSize_ = 0;
  uint64_t headerSize_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::size_t, std::less<>> indexByName_;
  std::map<std::string, std::string> metadata_;
};

/// Produces the bytes [offset, offset + size) of a tensor into `out`. Called
/// from several threads at once for different ranges of the same tensor or
/// of different tensors, so it must be thread-safe.
using TensorFill =
    std::function<Status(uint64_t offset, std::uint8_t *out, std::size_t size)>;

struct SafetensorsWriteOptions {
  /// Worker threads generating and writing data; 0: one per hardware thread.
  unsigned threads = 0;
  /// The size of one unit of work (a fill call and a pwrite), rounded to the
  /// tensor's fill granularity. Bounds the memory used: threads × chunkBytes.
  uint64_t chunkBytes = 8u << 20;
  /// Called after each chunk reaches the file with the data bytes written so
  /// far and the total; calls are serialized (never concurrent).
  std::function<void(uint64_t written, uint64_t total)> progress;
};

/// Collects tensors, then writes them as one safetensors file.
class SafetensorsWriter {
public:
  /// Adds a tensor whose bytes are `bytes` (exactly numel × dtype size of
  /// them); the memory must stay valid until write() returns.
  Status addTensor(std::string name, Dtype dtype, std::vector<int64_t> shape,
                   ByteView bytes);
  /// Adds a tensor whose bytes `fill` produces during write(), so that huge
  /// tensors go straight into the file. Each call covers a range that starts
  /// at a multiple of `fillGranularity` and is a multiple of it long (except
  /// the last, which ends at the tensor's end); 0 means one call for the whole
  /// tensor. Use it to keep a fill aligned with rows or quantization blocks.
  Status addTensor(std::string name, Dtype dtype, std::vector<int64_t> shape,
                   TensorFill fill, uint64_t fillGranularity = 0);
  /// Sets a "__metadata__" entry (Hugging Face expects "format": "pt").
  Status setMetadata(std::string key, std::string value);

  std::size_t tensorCount() const { return tensors_.size(); }
  /// Total bytes of tensor data (without the header).
  uint64_t dataSize() const { return dataSize_; }

  /// Writes the header (JSON, space-padded to a multiple of 8 bytes) and the
  /// data, in the order the tensors were added, to a temporary file beside
  /// `path`; flushes it to disk and renames it over `path`. On any failure the
  /// temporary file is removed and `path` is left as it was.
  Status write(const std::string &path,
               const SafetensorsWriteOptions &options = {}) const;

private:
  struct PendingTensor {
    std::string name;
    Dtype dtype;
    std::vector<int64_t> shape;
    uint64_t dataBegin, byteSize;
    ByteView bytes;   ///< the source, when no fill is given
    TensorFill fill;  ///< the source, when given
    uint64_t fillGranularity;
  };
  Status checkNewTensor(const std::string &name, Dtype dtype,
                        const std::vector<int64_t> &shape,
                        uint64_t &byteSize) const;
  std::string buildHeader() const;

  std::vector<PendingTensor> tensors_;
  std::map<std::string, std::size_t, std::less<>> indexByName_;
  std::map<std::string, std::string> metadata_;
  uint64_t dataSize_ = 0;
};

/// Writes `contents` to a temporary file beside `path`, flushes it to disk and
/// renames it over `path`: readers see the old file or the complete new one.
Status writeFileAtomically(const std::string &path, std::string_view contents);

/// Where parsing `text` as JSON stops (0-based byte offset: the offending byte,
/// or the last byte of an offending token) and a short reason, for messages
/// about malformed JSON; nullopt when `text` parses.
struct JsonSyntaxError {
  std::size_t offset;
  std::string reason;
};
std::optional<JsonSyntaxError> findJsonSyntaxError(std::string_view text);

} // namespace dsv3

#endif // DSV3_RUNTIME_SAFETENSORS_H
