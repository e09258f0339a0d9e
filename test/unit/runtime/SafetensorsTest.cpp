//===- SafetensorsTest.cpp - safetensors reading and writing --------------===//
//
// What the writer writes reads back byte for byte (from spans and from
// parallel fills), a failed write leaves nothing behind, and every class of
// corrupt file is rejected at open with the exact message naming the file,
// the tensor and the field. Corrupt files are built byte by byte here.
//
//===----------------------------------------------------------------------===//

#include "runtime/Safetensors.h"
#include "test/unit/TempDir.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

using namespace dsv3;

namespace {

/// Named after this test in $TMPDIR.
class TempDir : public dsv3::test::TempDir {
public:
  TempDir() : dsv3::test::TempDir("safetensors-test") {}
};

void writeBytes(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

std::string lengthPrefix(uint64_t length) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i)
    bytes[i] = static_cast<char>((length >> (8 * i)) & 0xFF);
  return bytes;
}

/// A safetensors file with `header` verbatim and `dataSize` bytes of data.
void writeRaw(const std::string &path, const std::string &header,
              uint64_t dataSize) {
  std::string data(dataSize, '\0');
  for (uint64_t i = 0; i < dataSize; ++i)
    data[i] = static_cast<char>(i * 7 + 3);
  writeBytes(path, lengthPrefix(header.size()) + header + data);
}

std::vector<std::uint8_t> randomBytes(std::size_t count, unsigned seed) {
  std::mt19937 generator(seed);
  std::vector<std::uint8_t> bytes(count);
  for (std::uint8_t &byte : bytes)
    byte = static_cast<std::uint8_t>(generator());
  return bytes;
}

/// The byte a fill produces at `offset` of tensor `salt`: any function of
/// the absolute offset shows whether chunks landed where they belong.
std::uint8_t filledByte(uint64_t offset, unsigned salt) {
  uint64_t x = (offset + 1) * 0x9E3779B97F4A7C15ULL + salt;
  return static_cast<std::uint8_t>(x >> 56);
}

/// Opens `path`, expecting failure with exactly `message`.
void expectOpenError(const std::string &path, const std::string &message) {
  StatusOr<SafetensorsFile> file = SafetensorsFile::open(path);
  ASSERT_FALSE(file.ok()) << "opened " << path;
  EXPECT_EQ(file.status().message(), message);
}

//===----------------------------------------------------------------------===//
// Dtypes and shapes
//===----------------------------------------------------------------------===//

TEST(Dtype, NamesAndSizesRoundTrip) {
  const std::pair<const char *, std::size_t> expected[] = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F8_E4M3", 1},
      {"F8_E5M2", 1}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
      {"U8", 1}, {"BOOL", 1}};
  for (const auto &[name, size] : expected) {
    std::optional<Dtype> dtype = parseDtype(name);
    ASSERT_TRUE(dtype) << name;
    EXPECT_STREQ(dtypeName(*dtype), name);
    EXPECT_EQ(dtypeSize(*dtype), size) << name;
  }
  EXPECT_FALSE(parseDtype("F8_E4M3FN"));
  EXPECT_FALSE(parseDtype("bf16"));
}

TEST(Dtype, ByteSizeChecksOverflowAndSign) {
  EXPECT_EQ(tensorByteSize(Dtype::BF16, {7168, 576}), 7168u * 576u * 2u);
  EXPECT_EQ(tensorByteSize(Dtype::F32, {}), 4u);
  EXPECT_EQ(tensorByteSize(Dtype::F32, {0, 5}), 0u);
  EXPECT_FALSE(tensorByteSize(Dtype::F32, {-1, 5}));
  EXPECT_FALSE(tensorByteSize(Dtype::F64, {INT64_C(1) << 31, INT64_C(1) << 31}));
  EXPECT_EQ(formatShape({7168, 576}), "[7168, 576]");
  EXPECT_EQ(formatShape({}), "[]");
}

//===----------------------------------------------------------------------===//
// Writing and reading back
//===----------------------------------------------------------------------===//

TEST(SafetensorsWriter, RoundTripIsByteIdentical) {
  TempDir dir;
  const std::vector<std::uint8_t> f32 = randomBytes(2 * 3 * 4, 1);
  const std::vector<std::uint8_t> bf16 = randomBytes(576 * 2, 2);
  const std::vector<std::uint8_t> scalar = randomBytes(8, 3);
  const std::vector<std::uint8_t> flags = {1, 0, 1};

  SafetensorsWriter writer;
  ASSERT_TRUE(writer.setMetadata("format", "pt").ok());
  ASSERT_TRUE(writer.addTensor("a.f32", Dtype::F32, {2, 3},
                               ByteView{f32.data(), f32.size()})
                  .ok());
  ASSERT_TRUE(writer.addTensor("b.bf16", Dtype::BF16, {576},
                               ByteView{bf16.data(), bf16.size()})
                  .ok());
  ASSERT_TRUE(writer.addTensor("c.scalar", Dtype::I64, {},
                               ByteView{scalar.data(), scalar.size()})
                  .ok());
  ASSERT_TRUE(writer.addTensor("d.empty", Dtype::U8, {0, 4}, ByteView{}).ok());
  ASSERT_TRUE(writer.addTensor("e.bool", Dtype::BOOL, {3},
                               ByteView{flags.data(), flags.size()})
                  .ok());
  // A generated FP8 weight of 5 rows of 300 bytes, filled 2 rows at a time.
  std::mutex callsMutex;
  std::vector<std::pair<uint64_t, std::size_t>> calls;
  ASSERT_TRUE(writer
                  .addTensor(
                      "f.fp8", Dtype::F8_E4M3, {5, 300},
                      [&](uint64_t offset, std::uint8_t *out, std::size_t size) {
                        for (std::size_t i = 0; i < size; ++i)
                          out[i] = filledByte(offset + i, 6);
                        std::lock_guard<std::mutex> lock(callsMutex);
                        calls.emplace_back(offset, size);
                        return Status::success();
                      },
                      /*fillGranularity=*/600)
                  .ok());
  EXPECT_EQ(writer.tensorCount(), 6u);
  EXPECT_EQ(writer.dataSize(), 24u + 1152u + 8u + 0u + 3u + 1500u);

  SafetensorsWriteOptions options;
  options.threads = 3;
  options.chunkBytes = 100; // below the granularity: one granule per call
  uint64_t lastProgress = 0;
  options.progress = [&](uint64_t written, uint64_t total) {
    EXPECT_GT(written, lastProgress);
    EXPECT_EQ(total, writer.dataSize());
    lastProgress = written;
  };
  const std::string path = dir.file("model.safetensors");
  Status written = writer.write(path, options);
  ASSERT_TRUE(written.ok()) << written.message();
  EXPECT_EQ(lastProgress, writer.dataSize());
  EXPECT_EQ(dir.list(), std::vector<std::string>{"model.safetensors"});

  // The fill saw granule-aligned ranges covering the tensor exactly once.
  std::sort(calls.begin(), calls.end());
  std::vector<std::pair<uint64_t, std::size_t>> expectedCalls = {
      {0, 600}, {600, 600}, {1200, 300}};
  EXPECT_EQ(calls, expectedCalls);

  StatusOr<SafetensorsFile> file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ(file->headerSize() % 8, 0u);
  EXPECT_EQ(file->fileSize(), 8 + file->headerSize() + writer.dataSize());
  EXPECT_EQ(file->metadata(),
            (std::map<std::string, std::string>{{"format", "pt"}}));
  ASSERT_EQ(file->tensors().size(), 6u);

  auto expectTensor = [&](const std::string &name, Dtype dtype,
                          std::vector<int64_t> shape,
                          const std::vector<std::uint8_t> &bytes) {
    const TensorInfo *tensor = file->find(name);
    ASSERT_NE(tensor, nullptr) << name;
    EXPECT_EQ(tensor->name, name);
    EXPECT_EQ(tensor->dtype, dtype) << name;
    EXPECT_EQ(tensor->shape, shape) << name;
    ASSERT_EQ(tensor->bytes.size, bytes.size()) << name;
    EXPECT_EQ(tensor->dataEnd - tensor->dataBegin, bytes.size()) << name;
    EXPECT_TRUE(bytes.empty() ||
                std::memcmp(tensor->bytes.data, bytes.data(), bytes.size()) ==
                    0)
        << name;
  };
  expectTensor("a.f32", Dtype::F32, {2, 3}, f32);
  expectTensor("b.bf16", Dtype::BF16, {576}, bf16);
  expectTensor("c.scalar", Dtype::I64, {}, scalar);
  expectTensor("d.empty", Dtype::U8, {0, 4}, {});
  expectTensor("e.bool", Dtype::BOOL, {3}, flags);
  std::vector<std::uint8_t> fp8(1500);
  for (std::size_t i = 0; i < fp8.size(); ++i)
    fp8[i] = filledByte(i, 6);
  expectTensor("f.fp8", Dtype::F8_E4M3, {5, 300}, fp8);
  EXPECT_EQ(file->find("f.fp8")->numel(), 1500u);
  EXPECT_EQ(file->find("absent"), nullptr);

  // tensors() is in data order, which is the order they were added.
  std::vector<std::string> order;
  for (const TensorInfo &tensor : file->tensors())
    order.push_back(tensor.name);
  EXPECT_EQ(order, (std::vector<std::string>{"a.f32", "b.bf16", "c.scalar",
                                             "d.empty", "e.bool", "f.fp8"}));

  // The header is Hugging Face's: JSON padded with spaces.
  std::string raw = readBytes(path);
  std::string header = raw.substr(8, file->headerSize());
  EXPECT_EQ(header.front(), '{');
  EXPECT_EQ(header.substr(header.find_last_not_of(' ') + 1),
            std::string(header.size() - header.find_last_not_of(' ') - 1, ' '));
  EXPECT_NE(header.find(R"("f.fp8":{"data_offsets":[1187,2687],"dtype":"F8_E4M3","shape":[5,300]})"),
            std::string::npos)
      << header;
}

TEST(SafetensorsWriter, ManyParallelChunksLandInPlace) {
  // 3 MB from 4 threads in 4 KB chunks, two tensors interleaved in time.
  TempDir dir;
  SafetensorsWriter writer;
  for (unsigned t = 0; t < 2; ++t)
    ASSERT_TRUE(writer
                    .addTensor(
                        "t" + std::to_string(t), Dtype::BF16, {768, 1024},
                        [t](uint64_t offset, std::uint8_t *out,
                            std::size_t size) {
                          for (std::size_t i = 0; i < size; ++i)
                            out[i] = filledByte(offset + i, t);
                          return Status::success();
                        },
                        2)
                    .ok());
  SafetensorsWriteOptions options;
  options.threads = 4;
  options.chunkBytes = 4096;
  ASSERT_TRUE(writer.write(dir.file("big.safetensors"), options).ok());
  StatusOr<SafetensorsFile> file =
      SafetensorsFile::open(dir.file("big.safetensors"));
  ASSERT_TRUE(file.ok()) << file.status().message();
  for (unsigned t = 0; t < 2; ++t) {
    const TensorInfo *tensor = file->find("t" + std::to_string(t));
    ASSERT_NE(tensor, nullptr);
    ASSERT_EQ(tensor->bytes.size, 768u * 1024u * 2u);
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < tensor->bytes.size; ++i)
      mismatches += tensor->bytes.data[i] != filledByte(i, t);
    EXPECT_EQ(mismatches, 0u) << "tensor t" << t;
  }
}

TEST(SafetensorsWriter, FailedFillLeavesNothingBehind) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  writeBytes(path, "previous contents");
  SafetensorsWriter writer;
  ASSERT_TRUE(writer
                  .addTensor(
                      "w", Dtype::U8, {1 << 16},
                      [](uint64_t offset, std::uint8_t *out, std::size_t size) {
                        if (offset >= 32768)
                          return Status::error("generator broke at {}", offset);
                        std::memset(out, 1, size);
                        return Status::success();
                      },
                      1)
                  .ok());
  SafetensorsWriteOptions options;
  options.threads = 2;
  options.chunkBytes = 8192;
  Status status = writer.write(path, options);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message().rfind(path + ": tensor 'w': generator broke at ", 0),
            0u)
      << status.message();
  EXPECT_EQ(readBytes(path), "previous contents");
  EXPECT_EQ(dir.list(), std::vector<std::string>{"model.safetensors"});
}

TEST(SafetensorsWriter, UnwritableDestinationIsOneError) {
  TempDir dir;
  SafetensorsWriter writer;
  std::uint8_t byte = 7;
  ASSERT_TRUE(writer.addTensor("x", Dtype::U8, {1}, ByteView{&byte, 1}).ok());
  const std::string path = dir.file("no/such/dir/model.safetensors");
  Status status = writer.write(path);
  EXPECT_EQ(status.message(), path + ": cannot create: No such file or directory");
}

TEST(SafetensorsWriter, RejectsBadTensors) {
  SafetensorsWriter writer;
  std::uint8_t bytes[8] = {};
  ASSERT_TRUE(writer.addTensor("x", Dtype::F32, {2}, ByteView{bytes, 8}).ok());
  EXPECT_EQ(writer.addTensor("x", Dtype::F32, {2}, ByteView{bytes, 8}).message(),
            "tensor 'x': added twice");
  EXPECT_EQ(writer.addTensor("__metadata__", Dtype::U8, {8}, ByteView{bytes, 8})
                .message(),
            "tensor '__metadata__': the name is reserved for the file's "
            "metadata");
  EXPECT_EQ(writer.addTensor("y", Dtype::F32, {3}, ByteView{bytes, 8}).message(),
            "tensor 'y': 8 bytes given, but F32 [3] needs 12");
  EXPECT_EQ(writer.addTensor("z", Dtype::F32, {-3}, ByteView{bytes, 8}).message(),
            "tensor 'z': shape [-3] has a negative dimension or more bytes "
            "than fit in 64 bits");
  EXPECT_EQ(writer.addTensor("bad\xff", Dtype::U8, {8}, ByteView{bytes, 8})
                .message(),
            "tensor 'bad\xff': the name is not valid UTF-8");
  EXPECT_EQ(writer.addTensor("f", Dtype::U8, {8}, TensorFill()).message(),
            "tensor 'f': no fill function given");
  EXPECT_EQ(writer.tensorCount(), 1u);
}

//===----------------------------------------------------------------------===//
// Every class of corrupt file
//===----------------------------------------------------------------------===//

class CorruptFile : public ::testing::Test {
protected:
  std::string path() const { return dir.file("model-00002-of-00003.safetensors"); }
  /// Writes a file with `header` and `dataSize` bytes of data; expects open
  /// to fail with `path(): ` + `message`.
  void expectRejected(const std::string &header, uint64_t dataSize,
                      const std::string &message) {
    writeRaw(path(), header, dataSize);
    expectOpenError(path(), path() + ": " + message);
  }

  TempDir dir;
};

TEST_F(CorruptFile, ShorterThanTheLength) {
  writeBytes(path(), std::string("\x10\x00\x00\x00\x00", 5));
  expectOpenError(path(), path() + ": file is 5 bytes, too short for the "
                                   "8-byte header length");
  writeBytes(path(), "");
  expectOpenError(path(), path() + ": file is 0 bytes, too short for the "
                                   "8-byte header length");
}

TEST_F(CorruptFile, HeaderLengthBeyondTheFile) {
  writeBytes(path(), lengthPrefix(1000) + "{}");
  expectOpenError(path(), path() + ": header length 1000 (bytes 0-7) goes "
                                   "beyond the end of the file (10 bytes)");
  // A length whose top bit is set must not wrap around.
  writeBytes(path(), lengthPrefix(~uint64_t(0)) + "{}");
  expectOpenError(path(), path() + ": header length 18446744073709551615 "
                                   "(bytes 0-7) goes beyond the end of the "
                                   "file (10 bytes)");
}

TEST_F(CorruptFile, HeaderLengthAboveTheLimit) {
  // A sparse 100 MB file costs no disk.
  writeBytes(path(), lengthPrefix(100'000'001));
  std::filesystem::resize_file(path(), 8 + 100'000'001);
  expectOpenError(path(), path() + ": header length 100000001 (bytes 0-7) "
                                   "exceeds the limit of 100000000 bytes");
}

TEST_F(CorruptFile, HeaderNotJson) {
  expectRejected(R"({"w": {"dtype" "F32"}})", 0,
                 "header is not valid JSON: syntax error while parsing object "
                 "separator - unexpected string literal; expected ':' (at byte "
                 "27 of the file)");
  expectRejected("{\"w\xff\": 1}", 0,
                 "header is not valid JSON: syntax error while parsing object "
                 "key - invalid string: ill-formed UTF-8 byte; expected string "
                 "literal (at byte 11 of the file)");
  // The raw bytes nlohmann quotes ("last read: ...") stay out of messages.
  expectRejected(std::string("{\"w\": \x01\x02}"), 0,
                 "header is not valid JSON: syntax error while parsing value - "
                 "invalid literal (at byte 14 of the file)");
  expectRejected("", 0,
                 "header is not valid JSON: syntax error while parsing value - "
                 "unexpected end of input; expected '[', '{', or a literal (at "
                 "byte 8 of the file)");
}

TEST_F(CorruptFile, HeaderNotAnObject) {
  expectRejected("[1, 2]", 0, "header is an array, expected a JSON object");
  expectRejected("17", 0, "header is 17, expected a JSON object");
}

TEST_F(CorruptFile, DuplicateTensor) {
  expectRejected(R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                     "w": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})",
                 2, "tensor 'w' appears twice in the header");
}

TEST_F(CorruptFile, BadMetadata) {
  expectRejected(R"({"__metadata__": [1]})", 0,
                 "'__metadata__' is an array, expected an object of strings");
  expectRejected(R"({"__metadata__": {"format": "pt", "step": 3}})", 0,
                 "'__metadata__' entry 'step' is 3, expected a string");
}

TEST_F(CorruptFile, EntryNotAnObject) {
  expectRejected(R"({"w": "F32"})", 0,
                 "tensor 'w': entry is a string, expected an object with "
                 "dtype, shape and data_offsets");
}

TEST_F(CorruptFile, MissingField) {
  expectRejected(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4,
                 "tensor 'w': missing field 'shape'");
  expectRejected(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4,
                 "tensor 'w': missing field 'dtype'");
  expectRejected(R"({"w": {"dtype": "F32", "shape": [1]}})", 4,
                 "tensor 'w': missing field 'data_offsets'");
}

TEST_F(CorruptFile, UnknownDtype) {
  expectRejected(
      R"({"model.layers.3.mlp.gate.weight": {"dtype": "F8_E4M3FN", "shape": [4], "data_offsets": [0, 4]}})",
      4,
      "tensor 'model.layers.3.mlp.gate.weight': unknown dtype 'F8_E4M3FN' "
      "(expected one of F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, "
      "I8, U8, BOOL)");
  expectRejected(R"({"w": {"dtype": 4, "shape": [1], "data_offsets": [0, 4]}})",
                 4, "tensor 'w': dtype is 4, expected a string");
}

TEST_F(CorruptFile, BadShape) {
  expectRejected(R"({"w": {"dtype": "F32", "shape": 4, "data_offsets": [0, 16]}})",
                 16, "tensor 'w': shape is 4, expected an array of "
                     "non-negative integers");
  expectRejected(
      R"({"w": {"dtype": "F32", "shape": [2, -2], "data_offsets": [0, 16]}})",
      16, "tensor 'w': shape element 1 is -2, expected a non-negative integer");
  expectRejected(
      R"({"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 16]}})", 16,
      "tensor 'w': shape element 0 is 2.5, expected a non-negative integer");
  expectRejected(
      R"({"w": {"dtype": "F32", "shape": ["2"], "data_offsets": [0, 16]}})", 16,
      "tensor 'w': shape element 0 is a string, expected a non-negative "
      "integer");
  expectRejected(
      R"({"w": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 16]}})",
      16, "tensor 'w': shape [4294967296, 4294967296] has more bytes than fit "
          "in 64 bits");
}

TEST_F(CorruptFile, OffsetsOutOfRange) {
  expectRejected(
      R"({"model.layers.3.mlp.gate.weight": {"dtype": "F32", "shape": [975], "data_offsets": [100, 4000]}})",
      2048,
      "tensor 'model.layers.3.mlp.gate.weight': data_offsets [100, 4000] end "
      "beyond the 2048 bytes of data");
  expectRejected(
      R"({"w": {"dtype": "U8", "shape": [0], "data_offsets": [9, 8]}})", 16,
      "tensor 'w': data_offsets [9, 8] begin after end");
  expectRejected(R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0]}})",
                 16, "tensor 'w': data_offsets is an array of 1 elements, "
                     "expected an array [begin, end] of two non-negative "
                     "integers");
  expectRejected(
      R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": {"begin": 0}}})",
      16, "tensor 'w': data_offsets is an object, expected an array [begin, "
          "end] of two non-negative integers");
  expectRejected(
      R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [-1, 0]}})", 16,
      "tensor 'w': data_offsets begin is -1, expected a non-negative integer");
}

TEST_F(CorruptFile, SizeMismatch) {
  expectRejected(
      R"({"w": {"dtype": "F32", "shape": [5, 6], "data_offsets": [0, 100]}})",
      100,
      "tensor 'w': data_offsets [0, 100] span 100 bytes, but F32 [5, 6] "
      "needs 120");
}

TEST_F(CorruptFile, OverlappingTensors) {
  expectRejected(
      R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
          "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})",
      24,
      "tensors 'a' (data_offsets [0, 16]) and 'b' (data_offsets [8, 24]) "
      "overlap");
  // Identical ranges overlap too; an empty tensor overlaps nothing.
  expectRejected(
      R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
          "b": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}})",
      4, "tensors 'a' (data_offsets [0, 4]) and 'b' (data_offsets [0, 4]) "
         "overlap");
  writeRaw(path(),
           R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
               "e": {"dtype": "U8", "shape": [0], "data_offsets": [2, 2]}})",
           4);
  EXPECT_TRUE(SafetensorsFile::open(path()).ok());
}

TEST_F(CorruptFile, BytesOfNoTensor) {
  expectRejected(
      R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
          "b": {"dtype": "U8", "shape": [4], "data_offsets": [6, 10]}})",
      10, "data bytes [4, 6) before tensor 'b' belong to no tensor");
  expectRejected(
      R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}})", 9,
      "data bytes [4, 9) at the end of the file belong to no tensor");
}

TEST_F(CorruptFile, NotAFile) {
  expectOpenError(dir.file("absent.safetensors"),
                  dir.file("absent.safetensors") +
                      ": cannot open: No such file or directory");
  std::filesystem::create_directory(dir.file("sub"));
  expectOpenError(dir.file("sub"), dir.file("sub") + ": not a regular file");
}

TEST_F(CorruptFile, HandWrittenValidFileOpens) {
  // Header fields in any order, offsets in any order, padding spaces: valid.
  writeRaw(path(),
           R"({"b": {"data_offsets": [4, 12], "shape": [2, 2], "dtype": "BF16"},
               "a": {"shape": [], "dtype": "F32", "data_offsets": [0, 4]},
               "__metadata__": {"format": "pt"}}     )",
           12);
  StatusOr<SafetensorsFile> file = SafetensorsFile::open(path());
  ASSERT_TRUE(file.ok()) << file.status().message();
  ASSERT_EQ(file->tensors().size(), 2u);
  EXPECT_EQ(file->tensors()[0].name, "a");
  EXPECT_EQ(file->tensors()[1].name, "b");
  EXPECT_EQ(file->find("b")->shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(file->find("b")->bytes.size, 8u);
  // Data starts right after the header: byte 4 of the data is 4 * 7 + 3.
  EXPECT_EQ(file->find("b")->bytes.data[0], std::uint8_t(4 * 7 + 3));
  EXPECT_EQ(file->metadata().at("format"), "pt");
}

TEST(WriteFileAtomically, ReplacesWholeOrNotAtAll) {
  TempDir dir;
  const std::string path = dir.file("config.json");
  writeBytes(path, "old");
  ASSERT_TRUE(writeFileAtomically(path, "{\"new\": true}\n").ok());
  EXPECT_EQ(readBytes(path), "{\"new\": true}\n");
  EXPECT_EQ(dir.list(), std::vector<std::string>{"config.json"});
  // Permissions are those of any file the user creates (0666 under the
  // umask), not mkstemp's owner-only 0600.
  mode_t mask = ::umask(0);
  ::umask(mask);
  auto expected = static_cast<std::filesystem::perms>(0666 & ~mask);
  EXPECT_EQ(std::filesystem::status(path).permissions(), expected);
  EXPECT_EQ(writeFileAtomically(dir.file("absent/config.json"), "x").message(),
            dir.file("absent/config.json") +
                ": cannot create: No such file or directory");
}

TEST(JsonSyntaxError, LocatesTheOffendingByte) {
  std::optional<JsonSyntaxError> error = findJsonSyntaxError("{\"a\": tru}");
  ASSERT_TRUE(error);
  EXPECT_EQ(error->offset, 9u); // the '}' that ends the bad literal
  EXPECT_EQ(error->reason, "syntax error while parsing value - invalid literal");
  EXPECT_FALSE(findJsonSyntaxError("{\"a\": true}"));
}

} // namespace
