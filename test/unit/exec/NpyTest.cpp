//===- NpyTest.cpp - .npy logits out, teacher-forced ids in ---------------===//

#include "runtime/exec/Npy.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

using namespace dsv3;
using namespace dsv3::exec;

namespace {

class NpyTest : public ::testing::Test {
protected:
  void SetUp() override {
    char pattern[] = "/tmp/dsv3-npy-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    directory = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(directory, ignored);
  }
  std::string file(const std::string &name) const {
    return directory + "/" + name;
  }
  void writeBytes(const std::string &path, const std::string &bytes) {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
  }
  std::string readBytes(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in),
                       std::istreambuf_iterator<char>());
  }
  template <typename T> std::string dataBytes(const std::vector<T> &values) {
    return std::string(reinterpret_cast<const char *>(values.data()),
                       values.size() * sizeof(T));
  }

  std::string directory;
};

TEST_F(NpyTest, HeaderLayout) {
  std::string header = npyHeader("<f4", {3, 2, 129280});
  EXPECT_EQ(header.size() % 64, 0u);
  EXPECT_EQ(header.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t length = static_cast<unsigned char>(header[8]) |
                        static_cast<unsigned char>(header[9]) << 8;
  EXPECT_EQ(length + 10, header.size());
  const std::string dict =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 129280), }";
  EXPECT_EQ(header.substr(10, dict.size()), dict);
  EXPECT_EQ(header.find_first_not_of(' ', 10 + dict.size()), header.size() - 1);
  EXPECT_EQ(header.back(), '\n');
  EXPECT_NE(npyHeader("<i4", {5}).find("'shape': (5,), }"), std::string::npos);
}

TEST_F(NpyTest, WritesFloatsAndRenamesOnlyWhenComplete) {
  const std::string path = file("logits.npy");
  StatusOr<NpyFloatWriter> writer = NpyFloatWriter::create(path, {2, 3});
  ASSERT_TRUE(writer.ok()) << writer.status().message();
  const std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, 7.0f};
  ASSERT_TRUE(writer->append(values.data(), 3).ok());
  EXPECT_FALSE(std::filesystem::exists(path)); // not before finish()
  ASSERT_TRUE(writer->append(values.data() + 3, 3).ok());
  EXPECT_EQ(writer->append(values.data(), 1).message(),
            path + ": 7 values written, more than the shape's 6");
  Status finished = writer->finish();
  ASSERT_TRUE(finished.ok()) << finished.message();
  EXPECT_EQ(readBytes(path), npyHeader("<f4", {2, 3}) + dataBytes(values));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(directory),
                          std::filesystem::directory_iterator()),
            1); // no temporary left
}

TEST_F(NpyTest, AnUnfinishedArrayLeavesNoFile) {
  const std::string path = file("partial.npy");
  {
    StatusOr<NpyFloatWriter> writer = NpyFloatWriter::create(path, {4});
    ASSERT_TRUE(writer.ok());
    float value = 1;
    ASSERT_TRUE(writer->append(&value, 1).ok());
    EXPECT_EQ(writer->finish().message(),
              path + ": 1 values written, the shape holds 4");
  }
  EXPECT_TRUE(std::filesystem::is_empty(directory));
}

TEST_F(NpyTest, ReadsInt32AndInt64) {
  const std::vector<int32_t> narrow = {1, -2, 70000, 4, 5, 6};
  writeBytes(file("a.npy"), npyHeader("<i4", {3, 2}) + dataBytes(narrow));
  StatusOr<NpyIntArray> a = readNpyInt32(file("a.npy"));
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(a->values, narrow);

  const std::vector<int64_t> wide = {7, 8, 9};
  writeBytes(file("b.npy"), npyHeader("<i8", {3}) + dataBytes(wide));
  StatusOr<NpyIntArray> b = readNpyInt32(file("b.npy"));
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(b->values, (std::vector<int32_t>{7, 8, 9}));
}

TEST_F(NpyTest, RejectsWhatItCannotRead) {
  writeBytes(file("magic.npy"), "PK\x03\x04 not numpy");
  EXPECT_EQ(readNpyInt32(file("magic.npy")).status().message(),
            file("magic.npy") + ": not a .npy file (no \\x93NUMPY magic)");

  const std::vector<float> floats = {1, 2};
  writeBytes(file("float.npy"), npyHeader("<f4", {2}) + dataBytes(floats));
  EXPECT_EQ(readNpyInt32(file("float.npy")).status().message(),
            file("float.npy") + ": dtype '<f4' is not int32 ('<i4') or int64 "
                                "('<i8')");

  const std::vector<int32_t> ints = {1, 2, 3};
  writeBytes(file("short.npy"), npyHeader("<i4", {2, 2}) + dataBytes(ints));
  EXPECT_EQ(readNpyInt32(file("short.npy")).status().message(),
            file("short.npy") + ": the shape (2, 2) holds 16 bytes of data, "
                                "the file has 12");

  std::string fortran = npyHeader("<i4", {3});
  fortran.replace(fortran.find("False"), 5, "True ");
  writeBytes(file("fortran.npy"), fortran + dataBytes(ints));
  EXPECT_EQ(readNpyInt32(file("fortran.npy")).status().message(),
            file("fortran.npy") + ": the array is in Fortran order; save it "
                                  "in C order");

  const std::vector<int64_t> huge = {int64_t{1} << 40};
  writeBytes(file("huge.npy"), npyHeader("<i8", {1}) + dataBytes(huge));
  EXPECT_EQ(readNpyInt32(file("huge.npy")).status().message(),
            file("huge.npy") + ": value 1099511627776 at index 0 does not fit "
                               "in int32");
}

} // namespace
