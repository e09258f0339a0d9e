//===- Safetensors.cpp - read and write .safetensors files ----------------===//

#include "runtime/Safetensors.h"

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace dsv3 {

using json = nlohmann::json;

namespace {

/// Hugging Face's reader refuses larger headers; so do we, before parsing.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeEntry {
  Dtype dtype;
  const char *name;
  std::size_t size;
};
constexpr DtypeEntry kDtypes[] = {
    {Dtype::F64, "F64", 8},         {Dtype::F32, "F32", 4},
    {Dtype::F16, "F16", 2},         {Dtype::BF16, "BF16", 2},
    {Dtype::F8_E4M3, "F8_E4M3", 1}, {Dtype::F8_E5M2, "F8_E5M2", 1},
    {Dtype::I64, "I64", 8},         {Dtype::I32, "I32", 4},
    {Dtype::I16, "I16", 2},         {Dtype::I8, "I8", 1},
    {Dtype::U8, "U8", 1},           {Dtype::BOOL, "BOOL", 1},
};

const DtypeEntry &dtypeEntry(Dtype dtype) {
  for (const DtypeEntry &entry : kDtypes)
    if (entry.dtype == dtype)
      return entry;
  std::abort(); // every enumerator is in the table
}

std::string errnoText(int error) { return std::strerror(error); }

/// "a string", "an array", or the number itself: what a JSON value is, for
/// messages that say what was found instead of what was expected.
std::string describe(const json &value) {
  if (value.is_number())
    return value.dump();
  std::string type = value.type_name();
  bool vowel = !type.empty() && std::strchr("aeiou", type[0]) != nullptr;
  return (vowel ? "an " : "a ") + type;
}

uint64_t readLittleEndian64(const std::uint8_t *bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i)
    value = (value << 8) | bytes[i];
  return value;
}

/// A SAX handler that accepts everything and remembers where parsing failed.
class SyntaxErrorLocator : public json::json_sax_t {
public:
  std::optional<JsonSyntaxError> error;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t &) override { return true; }
  bool string(string_t &) override { return true; }
  bool binary(binary_t &) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t &) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t position, const std::string &,
                   const nlohmann::detail::exception &exception) override {
    // nlohmann's text: "[json.exception...] parse error at line L, column C:
    // <reason>; last read: '<raw bytes>'; expected ...". Keep the reason and
    // the expectation, drop the raw bytes (they may be binary garbage).
    std::string text = exception.what();
    std::size_t colon = text.find(": ");
    std::string reason = colon == std::string::npos ? text : text.substr(colon + 2);
    std::size_t lastRead = reason.find("; last read: '");
    if (lastRead != std::string::npos) {
      std::size_t expected = reason.rfind("'; expected ");
      reason.erase(lastRead, expected == std::string::npos || expected < lastRead
                                 ? std::string::npos
                                 : expected + 1 - lastRead);
    }
    // `position` counts the bytes read up to where the parser stopped: the
    // offending byte, or the last byte of an offending token.
    error = JsonSyntaxError{position > 0 ? position - 1 : 0, reason};
    return false;
  }
};

/// Whether `text` can be written into JSON, which must be UTF-8. nlohmann
/// reports invalid UTF-8 only by throwing; the exception stays in here.
bool isValidUtf8(const std::string &text) {
  try {
    (void)json(text).dump();
    return true;
  } catch (const json::type_error &) {
    return false;
  }
}

/// Reads one entry of `data_offsets` or `shape`: a non-negative integer.
std::optional<uint64_t> asNonNegativeInteger(const json &value) {
  if (value.is_number_unsigned())
    return value.get<uint64_t>();
  return std::nullopt;
}

/// Writes all of `size` bytes at `offset`, retrying short writes.
Status writeAll(int fd, const std::uint8_t *data, std::size_t size,
                uint64_t offset, const std::string &path) {
  while (size > 0) {
    ssize_t written = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (written < 0) {
      if (errno == EINTR)
        continue;
      return Status::error("{}: cannot write {} bytes at byte {}: {}", path,
                           size, offset, errnoText(errno));
    }
    data += written;
    size -= static_cast<std::size_t>(written);
    offset += static_cast<uint64_t>(written);
  }
  return Status::success();
}

/// A file being written under a temporary name beside its destination; it is
/// removed unless commit() renamed it into place.
class TemporaryFile {
public:
  static StatusOr<TemporaryFile> create(const std::string &destination) {
    static std::atomic<unsigned> counter{0};
    for (int attempt = 0; attempt < 100; ++attempt) {
      std::string path = fmt::format("{}.tmp-{}-{}", destination, ::getpid(),
                                     counter.fetch_add(1));
      // 0666 under the umask, like any other file the user creates (mkstemp
      // would make a checkpoint only its owner can read).
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                      0666);
      if (fd >= 0)
        return TemporaryFile(std::move(path), fd);
      if (errno != EEXIST)
        return Status::error("{}: cannot create: {}", destination,
                             errnoText(errno));
    }
    return Status::error("{}: cannot create a temporary file beside it",
                         destination);
  }

  TemporaryFile(TemporaryFile &&other) noexcept
      : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)),
        committed_(std::exchange(other.committed_, true)) {}
  TemporaryFile &operator=(TemporaryFile &&) = delete;
  ~TemporaryFile() {
    if (fd_ >= 0)
      ::close(fd_);
    if (!committed_)
      ::unlink(path_.c_str());
  }

  int fd() const { return fd_; }

  /// Flushes the data to disk and renames the file over `destination`.
  Status commit(const std::string &destination) {
    if (::fsync(fd_) != 0)
      return Status::error("{}: cannot flush to disk: {}", destination,
                           errnoText(errno));
    int closed = ::close(fd_);
    fd_ = -1;
    if (closed != 0)
      return Status::error("{}: cannot write: {}", destination,
                           errnoText(errno));
    if (::rename(path_.c_str(), destination.c_str()) != 0)
      return Status::error("{}: cannot rename {} to it: {}", destination,
                           path_, errnoText(errno));
    committed_ = true;
    return Status::success();
  }

private:
  TemporaryFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::string path_;
  int fd_ = -1;
  bool committed_ = false;
};

} // namespace

//===----------------------------------------------------------------------===//
// Dtypes and shapes
//===----------------------------------------------------------------------===//

const char *dtypeName(Dtype dtype) { return dtypeEntry(dtype).name; }

std::size_t dtypeSize(Dtype dtype) { return dtypeEntry(dtype).size; }

std::optional<Dtype> parseDtype(std::string_view name) {
  for (const DtypeEntry &entry : kDtypes)
    if (name == entry.name)
      return entry.dtype;
  return std::nullopt;
}

const char *allDtypeNames() {
  return "F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U8, BOOL";
}

std::string formatShape(const std::vector<int64_t> &shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

std::optional<uint64_t> tensorByteSize(Dtype dtype,
                                       const std::vector<int64_t> &shape) {
  uint64_t bytes = dtypeSize(dtype);
  for (int64_t dim : shape) {
    if (dim < 0 ||
        __builtin_mul_overflow(bytes, static_cast<uint64_t>(dim), &bytes))
      return std::nullopt;
  }
  return bytes;
}

uint64_t TensorInfo::numel() const {
  uint64_t count = 1;
  for (int64_t dim : shape)
    count *= static_cast<uint64_t>(dim); // validated at open: no overflow
  return count;
}

std::optional<JsonSyntaxError> findJsonSyntaxError(std::string_view text) {
  SyntaxErrorLocator locator;
  json::sax_parse(text.begin(), text.end(), &locator);
  return locator.error;
}

//===----------------------------------------------------------------------===//
// SafetensorsFile
//===----------------------------------------------------------------------===//

SafetensorsFile::SafetensorsFile(SafetensorsFile &&other) noexcept {
  *this = std::move(other);
}

SafetensorsFile &SafetensorsFile::operator=(SafetensorsFile &&other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    mapping_ = std::exchange(other.mapping_, nullptr);
    mappingSize_ = std::exchange(other.mappingSize_, 0);
    headerSize_ = other.headerSize_;
    tensors_ = std::move(other.tensors_);
    indexByName_ = std::move(other.indexByName_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

SafetensorsFile::~SafetensorsFile() { unmap(); }

void SafetensorsFile::unmap() {
  if (mapping_)
    ::munmap(mapping_, mappingSize_);
  mapping_ = nullptr;
  mappingSize_ = 0;
}

const TensorInfo *SafetensorsFile::find(std::string_view name) const {
  auto found = indexByName_.find(name);
  return found == indexByName_.end() ? nullptr : &tensors_[found->second];
}

StatusOr<SafetensorsFile> SafetensorsFile::open(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Status::error("{}: cannot open: {}", path, errnoText(errno));
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    int error = errno;
    ::close(fd);
    return Status::error("{}: cannot stat: {}", path, errnoText(error));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    return Status::error("{}: not a regular file", path);
  }
  uint64_t fileSize = static_cast<uint64_t>(info.st_size);
  if (fileSize < 8) {
    ::close(fd);
    return Status::error("{}: file is {} bytes, too short for the 8-byte "
                         "header length",
                         path, fileSize);
  }
  void *mapping = ::mmap(nullptr, fileSize, PROT_READ, MAP_SHARED, fd, 0);
  int mapError = errno;
  ::close(fd); // the mapping keeps the file alive
  if (mapping == MAP_FAILED)
    return Status::error("{}: cannot map {} bytes: {}", path, fileSize,
                         errnoText(mapError));

  // From here on the mapping belongs to `file` and is released on any error.
  SafetensorsFile file;
  file.path_ = path;
  file.mapping_ = mapping;
  file.mappingSize_ = fileSize;
  const auto *bytes = static_cast<const std::uint8_t *>(mapping);

  uint64_t headerSize = readLittleEndian64(bytes);
  if (headerSize > fileSize - 8)
    return Status::error("{}: header length {} (bytes 0-7) goes beyond the "
                         "end of the file ({} bytes)",
                         path, headerSize, fileSize);
  if (headerSize > kMaxHeaderBytes)
    return Status::error("{}: header length {} (bytes 0-7) exceeds the limit "
                         "of {} bytes",
                         path, headerSize, kMaxHeaderBytes);
  file.headerSize_ = headerSize;
  const uint64_t dataStart = 8 + headerSize;
  const uint64_t dataSize = fileSize - dataStart;
  std::string_view headerText(reinterpret_cast<const char *>(bytes + 8),
                              headerSize);

  // Keys seen twice at the top level: nlohmann keeps only the last one.
  std::string duplicateName;
  auto detectDuplicates = [&, seen = std::set<std::string>()](
                              int depth, json::parse_event_t event,
                              json &parsed) mutable {
    if (depth == 1 && event == json::parse_event_t::key &&
        parsed.is_string() && duplicateName.empty() &&
        !seen.insert(parsed.get<std::string>()).second)
      duplicateName = parsed.get<std::string>();
    return true;
  };
  json header = json::parse(headerText.begin(), headerText.end(),
                            detectDuplicates, /*allow_exceptions=*/false);
  if (header.is_discarded()) {
    std::optional<JsonSyntaxError> error = findJsonSyntaxError(headerText);
    if (!error)
      return Status::error("{}: header (bytes 8-{}) is not valid JSON", path,
                           dataStart - 1);
    return Status::error("{}: header is not valid JSON: {} (at byte {} of the "
                         "file)",
                         path, error->reason, 8 + error->offset);
  }
  if (!header.is_object())
    return Status::error("{}: header is {}, expected a JSON object", path,
                         describe(header));
  if (!duplicateName.empty())
    return Status::error("{}: tensor '{}' appears twice in the header", path,
                         duplicateName);

  for (auto &[name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object())
        return Status::error("{}: '__metadata__' is {}, expected an object of "
                             "strings",
                             path, describe(entry));
      for (auto &[key, value] : entry.items()) {
        if (!value.is_string())
          return Status::error("{}: '__metadata__' entry '{}' is {}, expected "
                               "a string",
                               path, key, describe(value));
        file.metadata_[key] = value.get<std::string>();
      }
      continue;
    }

    if (!entry.is_object())
      return Status::error("{}: tensor '{}': entry is {}, expected an object "
                           "with dtype, shape and data_offsets",
                           path, name, describe(entry));
    for (const char *field : {"dtype", "shape", "data_offsets"})
      if (!entry.contains(field))
        return Status::error("{}: tensor '{}': missing field '{}'", path, name,
                             field);

    TensorInfo tensor;
    tensor.name = name;
    const json &dtype = entry["dtype"];
    if (!dtype.is_string())
      return Status::error("{}: tensor '{}': dtype is {}, expected a string",
                           path, name, describe(dtype));
    std::optional<Dtype> parsedDtype = parseDtype(dtype.get<std::string>());
    if (!parsedDtype)
      return Status::error("{}: tensor '{}': unknown dtype '{}' (expected one "
                           "of {})",
                           path, name, dtype.get<std::string>(),
                           allDtypeNames());
    tensor.dtype = *parsedDtype;

    const json &shape = entry["shape"];
    if (!shape.is_array())
      return Status::error("{}: tensor '{}': shape is {}, expected an array of "
                           "non-negative integers",
                           path, name, describe(shape));
    for (std::size_t i = 0; i < shape.size(); ++i) {
      std::optional<uint64_t> dim = asNonNegativeInteger(shape[i]);
      if (!dim || *dim > static_cast<uint64_t>(INT64_MAX))
        return Status::error("{}: tensor '{}': shape element {} is {}, "
                             "expected a non-negative integer",
                             path, name, i, describe(shape[i]));
      tensor.shape.push_back(static_cast<int64_t>(*dim));
    }

    const json &offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2)
      return Status::error("{}: tensor '{}': data_offsets is {}, expected an "
                           "array [begin, end] of two non-negative integers",
                           path, name,
                           offsets.is_array()
                               ? fmt::format("an array of {} elements",
                                             offsets.size())
                               : describe(offsets));
    for (std::size_t i = 0; i < 2; ++i)
      if (!asNonNegativeInteger(offsets[i]))
        return Status::error("{}: tensor '{}': data_offsets {} is {}, "
                             "expected a non-negative integer",
                             path, name, i == 0 ? "begin" : "end",
                             describe(offsets[i]));
    tensor.dataBegin = offsets[0].get<uint64_t>();
    tensor.dataEnd = offsets[1].get<uint64_t>();
    if (tensor.dataBegin > tensor.dataEnd)
      return Status::error("{}: tensor '{}': data_offsets [{}, {}] begin "
                           "after end",
                           path, name, tensor.dataBegin, tensor.dataEnd);
    if (tensor.dataEnd > dataSize)
      return Status::error("{}: tensor '{}': data_offsets [{}, {}] end beyond "
                           "the {} bytes of data",
                           path, name, tensor.dataBegin, tensor.dataEnd,
                           dataSize);
    std::optional<uint64_t> byteSize =
        tensorByteSize(tensor.dtype, tensor.shape);
    if (!byteSize)
      return Status::error("{}: tensor '{}': shape {} has more bytes than fit "
                           "in 64 bits",
                           path, name, formatShape(tensor.shape));
    if (tensor.dataEnd - tensor.dataBegin != *byteSize)
      return Status::error("{}: tensor '{}': data_offsets [{}, {}] span {} "
                           "bytes, but {} {} needs {}",
                           path, name, tensor.dataBegin, tensor.dataEnd,
                           tensor.dataEnd - tensor.dataBegin,
                           dtypeName(tensor.dtype), formatShape(tensor.shape),
                           *byteSize);
    tensor.bytes = ByteView{bytes + dataStart + tensor.dataBegin,
                            static_cast<std::size_t>(*byteSize)};
    file.tensors_.push_back(std::move(tensor));
  }

  // Data order; then every byte of the data must belong to exactly one tensor
  // (Hugging Face's reader rejects holes too: they would let a file carry
  // content no tensor accounts for).
  std::sort(file.tensors_.begin(), file.tensors_.end(),
            [](const TensorInfo &a, const TensorInfo &b) {
              return std::tie(a.dataBegin, a.dataEnd) <
                     std::tie(b.dataBegin, b.dataEnd);
            });
  uint64_t coveredEnd = 0;
  const TensorInfo *previous = nullptr; // last non-empty tensor
  for (const TensorInfo &tensor : file.tensors_) {
    if (tensor.dataBegin == tensor.dataEnd)
      continue;
    if (previous && tensor.dataBegin < previous->dataEnd)
      return Status::error("{}: tensors '{}' (data_offsets [{}, {}]) and '{}' "
                           "(data_offsets [{}, {}]) overlap",
                           path, previous->name, previous->dataBegin,
                           previous->dataEnd, tensor.name, tensor.dataBegin,
                           tensor.dataEnd);
    if (tensor.dataBegin > coveredEnd)
      return Status::error("{}: data bytes [{}, {}) before tensor '{}' belong "
                           "to no tensor",
                           path, coveredEnd, tensor.dataBegin, tensor.name);
    coveredEnd = tensor.dataEnd;
    previous = &tensor;
  }
  if (coveredEnd != dataSize)
    return Status::error("{}: data bytes [{}, {}) at the end of the file "
                         "belong to no tensor",
                         path, coveredEnd, dataSize);

  for (std::size_t i = 0; i < file.tensors_.size(); ++i)
    file.indexByName_.emplace(file.tensors_[i].name, i);
  return file;
}

//===----------------------------------------------------------------------===//
// SafetensorsWriter
//===----------------------------------------------------------------------===//

Status SafetensorsWriter::checkNewTensor(const std::string &name, Dtype dtype,
                                         const std::vector<int64_t> &shape,
                                         uint64_t &byteSize) const {
  if (name == "__metadata__")
    return Status::error("tensor '__metadata__': the name is reserved for the "
                         "file's metadata");
  if (indexByName_.count(name))
    return Status::error("tensor '{}': added twice", name);
  // The header is JSON: a name that is not UTF-8 could not be written.
  if (!isValidUtf8(name))
    return Status::error("tensor '{}': the name is not valid UTF-8", name);
  std::optional<uint64_t> size = tensorByteSize(dtype, shape);
  if (!size)
    return Status::error("tensor '{}': shape {} has a negative dimension or "
                         "more bytes than fit in 64 bits",
                         name, formatShape(shape));
  byteSize = *size;
  return Status::success();
}

Status SafetensorsWriter::addTensor(std::string name, Dtype dtype,
                                    std::vector<int64_t> shape,
                                    ByteView bytes) {
  uint64_t byteSize = 0;
  DSV3_RETURN_IF_ERROR(checkNewTensor(name, dtype, shape, byteSize));
  if (bytes.size != byteSize)
    return Status::error("tensor '{}': {} bytes given, but {} {} needs {}",
                         name, bytes.size, dtypeName(dtype),
                         formatShape(shape), byteSize);
  indexByName_.emplace(name, tensors_.size());
  tensors_.push_back(PendingTensor{std::move(name), dtype, std::move(shape),
                                   dataSize_, byteSize, bytes, nullptr, 0});
  dataSize_ += byteSize;
  return Status::success();
}

Status SafetensorsWriter::addTensor(std::string name, Dtype dtype,
                                    std::vector<int64_t> shape,
                                    TensorFill fill,
                                    uint64_t fillGranularity) {
  uint64_t byteSize = 0;
  DSV3_RETURN_IF_ERROR(checkNewTensor(name, dtype, shape, byteSize));
  if (!fill)
    return Status::error("tensor '{}': no fill function given", name);
  indexByName_.emplace(name, tensors_.size());
  tensors_.push_back(PendingTensor{std::move(name), dtype, std::move(shape),
                                   dataSize_, byteSize, ByteView{},
                                   std::move(fill), fillGranularity});
  dataSize_ += byteSize;
  return Status::success();
}

Status SafetensorsWriter::setMetadata(std::string key, std::string value) {
  if (!isValidUtf8(key) || !isValidUtf8(value))
    return Status::error("metadata '{}': not valid UTF-8", key);
  metadata_[std::move(key)] = std::move(value);
  return Status::success();
}

std::string SafetensorsWriter::buildHeader() const {
  json header = json::object();
  if (!metadata_.empty())
    header["__metadata__"] = metadata_;
  for (const PendingTensor &tensor : tensors_)
    header[tensor.name] = {
        {"dtype", dtypeName(tensor.dtype)},
        {"shape", tensor.shape},
        {"data_offsets",
         {tensor.dataBegin, tensor.dataBegin + tensor.byteSize}}};
  // Every string was checked to be UTF-8 when added, so this cannot throw.
  std::string text = header.dump();
  // Like Hugging Face: pad with spaces so that the data starts 8-aligned.
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

Status SafetensorsWriter::write(const std::string &path,
                                const SafetensorsWriteOptions &options) const {
  const std::string header = buildHeader();
  const uint64_t dataStart = 8 + header.size();

  // One work item per chunk of a tensor, in file order, so that the file
  // fills front to back and a block-scale tensor is usually reached after the
  // weight it scales.
  struct Chunk {
    std::size_t tensor;
    uint64_t offset, size;
  };
  std::vector<Chunk> chunks;
  const uint64_t target = std::max<uint64_t>(options.chunkBytes, 1);
  for (std::size_t t = 0; t < tensors_.size(); ++t) {
    const PendingTensor &tensor = tensors_[t];
    uint64_t chunkSize = target;
    if (tensor.fill) {
      uint64_t granularity = tensor.fillGranularity == 0
                                 ? std::max<uint64_t>(tensor.byteSize, 1)
                                 : tensor.fillGranularity;
      chunkSize = std::max<uint64_t>(1, target / granularity) * granularity;
    }
    for (uint64_t offset = 0; offset < tensor.byteSize; offset += chunkSize) {
      uint64_t size = std::min(chunkSize, tensor.byteSize - offset);
      chunks.push_back(Chunk{t, offset, size});
    }
  }

  DSV3_ASSIGN_OR_RETURN(TemporaryFile temp, TemporaryFile::create(path));
  std::uint8_t lengthBytes[8];
  for (int i = 0; i < 8; ++i)
    lengthBytes[i] = static_cast<std::uint8_t>(header.size() >> (8 * i));
  DSV3_RETURN_IF_ERROR(writeAll(temp.fd(), lengthBytes, 8, 0, path));
  DSV3_RETURN_IF_ERROR(
      writeAll(temp.fd(), reinterpret_cast<const std::uint8_t *>(header.data()),
               header.size(), 8, path));

  std::atomic<std::size_t> nextChunk{0};
  std::atomic<bool> failed{false};
  std::mutex writeMutex;
  std::mutex reportMutex; // guards firstError, written, progress calls
  Status firstError;
  uint64_t written = 0;

  auto worker = [&] {
    std::vector<std::uint8_t> buffer;
    while (!failed.load(std::memory_order_relaxed)) {
      std::size_t index = nextChunk.fetch_add(1);
      if (index >= chunks.size())
        return;
      const Chunk &chunk = chunks[index];
      const PendingTensor &tensor = tensors_[chunk.tensor];
      const std::uint8_t *source = nullptr;
      Status status;
      if (tensor.fill) {
        if (buffer.size() < chunk.size)
          buffer.resize(chunk.size);
        status = tensor.fill(chunk.offset, buffer.data(), chunk.size)
                     .withPrefix(fmt::format("{}: tensor '{}': ", path,
                                             tensor.name));
        source = buffer.data();
      } else {
        source = tensor.bytes.data + chunk.offset;
      }
      if (status.ok()) {
        // One pwrite at a time: concurrent buffered writes to one file spin on
        // the kernel's inode lock, burning the CPU time generation needs.
        std::lock_guard<std::mutex> lock(writeMutex);
        status = writeAll(temp.fd(), source, chunk.size,
                          dataStart + tensor.dataBegin + chunk.offset, path);
      }
      std::lock_guard<std::mutex> lock(reportMutex);
      if (!status.ok()) {
        if (!failed.exchange(true))
          firstError = std::move(status);
        return;
      }
      written += chunk.size;
      if (options.progress)
        options.progress(written, dataSize_);
    }
  };

  unsigned threads = options.threads ? options.threads
                                     : std::max(1u, std::thread::hardware_concurrency());
  threads = static_cast<unsigned>(
      std::min<std::size_t>(threads, std::max<std::size_t>(chunks.size(), 1)));
  if (threads <= 1) {
    worker();
  } else {
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (unsigned i = 0; i < threads; ++i)
      pool.emplace_back(worker);
    for (std::thread &thread : pool)
      thread.join();
  }
  if (failed)
    return firstError;
  return temp.commit(path);
}

Status writeFileAtomically(const std::string &path, std::string_view contents) {
  DSV3_ASSIGN_OR_RETURN(TemporaryFile temp, TemporaryFile::create(path));
  DSV3_RETURN_IF_ERROR(
      writeAll(temp.fd(), reinterpret_cast<const std::uint8_t *>(contents.data()),
               contents.size(), 0, path));
  return temp.commit(path);
}

} // namespace dsv3
