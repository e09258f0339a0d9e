//===- Npy.h - NumPy .npy arrays: write float32, read int32 --------*- C++ -*-===//
//
// The .npy format (version 1.0): the magic "\x93NUMPY", major and minor
// version bytes, a little-endian uint16 header length, then a Python dict
// literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// padded with spaces and a final newline so the data starts at a multiple of
// 64 bytes; then the data, C order. dsv3-run writes logits this way for
// comparison with transformers and reads teacher-forced token ids.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_EXEC_NPY_H
#define DSV3_RUNTIME_EXEC_NPY_H

#include "runtime/Status.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace dsv3::exec {

/// The .npy header for a C-order array of `descr` ('<f4', '<i4') and
/// `shape`, padding included.
std::string npyHeader(const std::string &descr,
                      const std::vector<int64_t> &shape);

/// Writes a float32 array of a known shape row by row, to a temporary file
/// renamed over the destination by finish() (never a partial file at `path`).
class NpyFloatWriter {
public:
  static StatusOr<NpyFloatWriter> create(const std::string &path,
                                         std::vector<int64_t> shape);
  NpyFloatWriter(NpyFloatWriter &&other) noexcept;
  NpyFloatWriter &operator=(NpyFloatWriter &&) = delete;
  NpyFloatWriter(const NpyFloatWriter &) = delete;
  ~NpyFloatWriter(); ///< removes the temporary file unless finished

  /// Appends values (in C order after those already written).
  Status append(const float *values, size_t count);
  /// Checks that exactly numel values were written, then renames.
  Status finish();

private:
  NpyFloatWriter() = default;

  std::string path_, temporaryPath_;
  std::FILE *file_ = nullptr;
  uint64_t expected_ = 0, written_ = 0;
};

/// An int32 array read from a .npy file.
struct NpyIntArray {
  std::vector<int64_t> shape;
  std::vector<int32_t> values;
};

/// Reads `path`: a C-order array of int32 ('<i4') or int64 ('<i8', each
/// value must fit in int32; NumPy's default integer type), version 1, 2 or 3.
StatusOr<NpyIntArray> readNpyInt32(const std::string &path);

} // namespace dsv3::exec

#endif // DSV3_RUNTIME_EXEC_NPY_H
