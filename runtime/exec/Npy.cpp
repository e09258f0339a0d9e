//===- Npy.cpp - NumPy .npy arrays: write float32, read int32 -------------===//

#include "runtime/exec/Npy.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <string_view>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

namespace dsv3::exec {

namespace {
constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

std::string shapeTuple(const std::vector<int64_t> &shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1)
    text += ",";
  return text + ")";
}
} // namespace

std::string npyHeader(const std::string &descr,
                      const std::vector<int64_t> &shape) {
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, "
                                 "'shape': {}, }}",
                                 descr, shapeTuple(shape));
  // magic, version (1.0), uint16 length, dict, spaces, '\n': a multiple of 64.
  const size_t unpadded = kMagicSize + 2 + 2 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  std::string header(kMagic, kMagicSize);
  header += '\x01';
  header += '\x00';
  header += static_cast<char>(dict.size() & 0xFF);
  header += static_cast<char>(dict.size() >> 8);
  return header + dict;
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

StatusOr<NpyFloatWriter> NpyFloatWriter::create(const std::string &path,
                                                std::vector<int64_t> shape) {
  NpyFloatWriter writer;
  writer.path_ = path;
  writer.expected_ = 1;
  for (int64_t dim : shape) {
    if (dim < 0)
      return Status::error("{}: negative dimension in shape", path);
    writer.expected_ *= static_cast<uint64_t>(dim);
  }
  // Beside the destination (so the rename stays on one file system), created
  // exclusively with the usual permissions (mkstemp would make it 0600).
  std::string pattern;
  int fd = -1;
  for (unsigned attempt = 0; fd < 0 && attempt < 100; ++attempt) {
    pattern = fmt::format("{}.tmp-{}-{}", path, ::getpid(), attempt);
    fd = ::open(pattern.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST)
      break;
  }
  if (fd < 0)
    return Status::error("{}: cannot create a temporary file beside it: {}",
                         path, std::strerror(errno));
  writer.temporaryPath_ = pattern;
  writer.file_ = ::fdopen(fd, "wb");
  if (!writer.file_) {
    ::close(fd);
    return Status::error("{}: fdopen failed: {}", pattern,
                         std::strerror(errno));
  }
  const std::string header = npyHeader("<f4", shape);
  if (std::fwrite(header.data(), 1, header.size(), writer.file_) !=
      header.size())
    return Status::error("{}: write failed: {}", pattern, std::strerror(errno));
  return writer;
}

NpyFloatWriter::NpyFloatWriter(NpyFloatWriter &&other) noexcept
    : path_(std::move(other.path_)),
      temporaryPath_(std::move(other.temporaryPath_)),
      file_(std::exchange(other.file_, nullptr)), expected_(other.expected_),
      written_(other.written_) {
  other.temporaryPath_.clear();
}

NpyFloatWriter::~NpyFloatWriter() {
  if (file_)
    std::fclose(file_);
  if (!temporaryPath_.empty())
    ::unlink(temporaryPath_.c_str());
}

Status NpyFloatWriter::append(const float *values, size_t count) {
  if (!file_)
    return Status::error("{}: the array is already finished", path_);
  if (written_ + count > expected_)
    return Status::error("{}: {} values written, more than the shape's {}",
                         path_, written_ + count, expected_);
  static_assert(sizeof(float) == 4, "IEEE single precision");
  if (std::fwrite(values, sizeof(float), count, file_) != count)
    return Status::error("{}: write failed: {}", temporaryPath_,
                         std::strerror(errno));
  written_ += count;
  return Status::success();
}

Status NpyFloatWriter::finish() {
  if (!file_)
    return Status::error("{}: the array is already finished", path_);
  if (written_ != expected_)
    return Status::error("{}: {} values written, the shape holds {}", path_,
                         written_, expected_);
  const bool flushed = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  const int flushError = errno;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!flushed || !closed)
    return Status::error("{}: write failed: {}", temporaryPath_,
                         std::strerror(flushed ? errno : flushError));
  if (std::rename(temporaryPath_.c_str(), path_.c_str()) != 0)
    return Status::error("{}: cannot rename {} over it: {}", path_,
                         temporaryPath_, std::strerror(errno));
  temporaryPath_.clear();
  return Status::success();
}

//===----------------------------------------------------------------------===//
// Reading
//===----------------------------------------------------------------------===//

namespace {

/// The text after `'key':` in a header dict, with leading spaces skipped.
std::optional<std::string_view> dictValue(std::string_view dict,
                                          std::string_view key) {
  const std::string quoted = "'" + std::string(key) + "'";
  size_t at = dict.find(quoted);
  if (at == std::string_view::npos)
    return std::nullopt;
  at = dict.find(':', at + quoted.size());
  if (at == std::string_view::npos)
    return std::nullopt;
  ++at;
  while (at < dict.size() && dict[at] == ' ')
    ++at;
  return dict.substr(at);
}

} // namespace

StatusOr<NpyIntArray> readNpyInt32(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error("{}: cannot open: {}", path, std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
  if (bytes.size() < kMagicSize + 4 ||
      bytes.compare(0, kMagicSize, kMagic, kMagicSize) != 0)
    return Status::error("{}: not a .npy file (no \\x93NUMPY magic)", path);
  const unsigned major = static_cast<unsigned char>(bytes[kMagicSize]);
  size_t headerLength = 0, dictStart = 0;
  if (major == 1) {
    headerLength = static_cast<unsigned char>(bytes[8]) |
                   static_cast<unsigned char>(bytes[9]) << 8;
    dictStart = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12)
      return Status::error("{}: truncated .npy header", path);
    for (int i = 3; i >= 0; --i)
      headerLength = headerLength << 8 | static_cast<unsigned char>(bytes[8 + i]);
    dictStart = 12;
  } else {
    return Status::error("{}: .npy version {} is not supported (1, 2 or 3)",
                         path, major);
  }
  if (bytes.size() < dictStart + headerLength)
    return Status::error("{}: truncated .npy header", path);
  const std::string_view dict(bytes.data() + dictStart, headerLength);

  std::optional<std::string_view> descr = dictValue(dict, "descr");
  std::optional<std::string_view> fortran = dictValue(dict, "fortran_order");
  std::optional<std::string_view> shapeText = dictValue(dict, "shape");
  if (!descr || !fortran || !shapeText)
    return Status::error("{}: the .npy header lacks descr, fortran_order or "
                         "shape",
                         path);
  size_t elementBytes = 0;
  if (descr->substr(0, 5) == "'<i4'")
    elementBytes = 4;
  else if (descr->substr(0, 5) == "'<i8'")
    elementBytes = 8;
  else
    return Status::error("{}: dtype {} is not int32 ('<i4') or int64 ('<i8')",
                         path, descr->substr(0, descr->find_first_of(",}")));
  if (fortran->substr(0, 5) != "False")
    return Status::error("{}: the array is in Fortran order; save it in C "
                         "order",
                         path);
  if (shapeText->empty() || (*shapeText)[0] != '(')
    return Status::error("{}: malformed shape in the .npy header", path);
  NpyIntArray array;
  uint64_t count = 1;
  size_t at = 1;
  while (at < shapeText->size() && (*shapeText)[at] != ')') {
    const char c = (*shapeText)[at];
    if (c == ' ' || c == ',') {
      ++at;
      continue;
    }
    if (c < '0' || c > '9')
      return Status::error("{}: malformed shape in the .npy header", path);
    int64_t dim = 0;
    while (at < shapeText->size() && (*shapeText)[at] >= '0' &&
           (*shapeText)[at] <= '9') {
      dim = dim * 10 + ((*shapeText)[at] - '0');
      if (dim > (int64_t{1} << 40))
        return Status::error("{}: shape dimension too large", path);
      ++at;
    }
    array.shape.push_back(dim);
    count *= static_cast<uint64_t>(dim);
  }
  const size_t dataStart = dictStart + headerLength;
  if (bytes.size() - dataStart != count * elementBytes)
    return Status::error("{}: the shape {} holds {} bytes of data, the file "
                         "has {}",
                         path, shapeTuple(array.shape), count * elementBytes,
                         bytes.size() - dataStart);
  array.values.resize(count);
  const char *data = bytes.data() + dataStart;
  for (uint64_t i = 0; i < count; ++i) {
    if (elementBytes == 4) {
      std::memcpy(&array.values[i], data + 4 * i, 4);
      continue;
    }
    int64_t wide;
    std::memcpy(&wide, data + 8 * i, 8);
    if (wide < std::numeric_limits<int32_t>::min() ||
        wide > std::numeric_limits<int32_t>::max())
      return Status::error("{}: value {} at index {} does not fit in int32",
                           path, wide, i);
    array.values[i] = static_cast<int32_t>(wide);
  }
  return array;
}

} // namespace dsv3::exec
