//===- PlanFileTest.cpp - plan verification and the device check ----------===//
//
// verifyPlan accepts the small plan and rejects, each with its exact message,
// a wrong file identifier, a short or truncated buffer, another schema
// version, and every out-of-range index, offset, grid, block, argument,
// Gemm field and inconsistent weight. checkDevice compares architecture and
// memory.
//
//===----------------------------------------------------------------------===//

#include "TestPlans.h"

#include "runtime/plan/PlanFile.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <unistd.h>

using namespace dsv3;
using namespace dsv3::plan;
using namespace dsv3::testing;

namespace {

Status verify(const std::vector<uint8_t> &bytes) {
  return verifyPlan(bytes.data(), bytes.size(), "test.plan");
}

/// The message of verifying smallPlan() after `edit`; empty when it passes.
std::string errorAfter(const std::function<void(PlanSpec &)> &edit) {
  PlanSpec spec = smallPlan();
  edit(spec);
  Status status = verify(buildPlan(spec));
  return status.ok() ? "" : status.message();
}

TEST(PlanFileTest, SmallPlanVerifies) {
  std::vector<uint8_t> bytes = buildPlan(smallPlan());
  Status status = verify(bytes);
  ASSERT_TRUE(status.ok()) << status.message();
  StatusOr<PlanFile> file = PlanFile::fromBytes(bytes, "small.plan");
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ(file->plan().entry_points()->size(), 2u);
  EXPECT_EQ(file->plan().weights()->size(), 3u);
  EXPECT_EQ(file->name(), "small.plan");
}

TEST(PlanFileTest, OpensAFileAndNamesAMissingOne) {
  char path[] = "/tmp/dsv3-plan-test-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::vector<uint8_t> bytes = buildPlan(smallPlan());
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
  }
  StatusOr<PlanFile> file = PlanFile::open(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ(file->bytes(), bytes);
  ::unlink(path);

  StatusOr<PlanFile> missing = PlanFile::open(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            std::string(path) + ": cannot open: No such file or directory");
}

TEST(PlanFileTest, WrongFileIdentifier) {
  PlanSpec spec = smallPlan();
  spec.identifier = "ABCD";
  EXPECT_EQ(verify(buildPlan(spec)).message(),
            "test.plan: not a dsv3 plan: the file identifier is 'ABCD', "
            "expected 'DSV3'");
  // Non-printable identifier bytes are escaped.
  std::vector<uint8_t> bytes = {0x10, 0, 0, 0, 0x7F, 'P', 'K', 0x03, 0, 0};
  EXPECT_EQ(verify(bytes).message(),
            "test.plan: not a dsv3 plan: the file identifier is '\\x7fPK\\x03', "
            "expected 'DSV3'");
}

TEST(PlanFileTest, TooShort) {
  std::vector<uint8_t> bytes = {'D', 'S', 'V', '3'};
  EXPECT_EQ(verify(bytes).message(),
            "test.plan: not a dsv3 plan: 4 bytes is too short");
}

TEST(PlanFileTest, TruncatedBuffer) {
  std::vector<uint8_t> bytes = buildPlan(smallPlan());
  bytes.resize(bytes.size() / 2);
  EXPECT_EQ(verify(bytes).message(),
            "test.plan: corrupt or truncated plan: the flatbuffer fails "
            "verification (" +
                std::to_string(bytes.size()) + " bytes)");
}

TEST(PlanFileTest, CorruptOffset) {
  std::vector<uint8_t> bytes = buildPlan(smallPlan());
  // The root offset pointing past the end.
  bytes[0] = 0xF0;
  bytes[1] = 0xFF;
  bytes[2] = 0xFF;
  bytes[3] = 0x7F;
  EXPECT_NE(verify(bytes).message().find("corrupt or truncated plan"),
            std::string::npos);
}

TEST(PlanFileTest, SchemaVersionMismatch) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.schemaVersion = kSchemaVersion + 1; }),
            "test.plan: plan schema version " +
                std::to_string(kSchemaVersion + 1) +
                ", but this runtime reads version " +
                std::to_string(kSchemaVersion) +
                " (rebuild the plan with a matching dsv3c)");
}

TEST(PlanFileTest, MissingTables) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.hasTarget = false; }),
            "test.plan: the plan has no target");
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.hasLimits = false; }),
            "test.plan: the plan has no limits");
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.hasModel = false; }),
            "test.plan: the plan has no model");
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.entries.clear(); }),
            "test.plan: the plan has no entry points");
}

TEST(PlanFileTest, BadLimitsAndModel) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.maxTokens = 0; }),
            "test.plan: limits: max_tokens is 0, must be at least 1");
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.pageSize = 0; }),
            "test.plan: limits: page_size is 0, must be at least 1");
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.cacheRow = 0; }),
            "test.plan: model: cache_row_elements is 0, must be at least 1");
}

TEST(PlanFileTest, KernelIndexOutOfRange) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.entries[0].launches[1].kernel = 7; }),
            "test.plan: entry point 'prefill' step 1 (rms_norm): kernel 7 out "
            "of range (the plan has 3 kernels)");
}

TEST(PlanFileTest, ModuleIndexOutOfRange) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.kernels[1].module = 1; }),
            "test.plan: kernel 1 (dsv3k::rms_norm<16>): module 1 out of range "
            "(the plan has 1 module)");
}

TEST(PlanFileTest, SamplerOutOfRange) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.sampler = 3; }),
            "test.plan: sampler: kernel 3 out of range (the plan has 3 "
            "kernels)");
}

TEST(PlanFileTest, WeightIndexOutOfRange) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[0].args[1] = weightArg(3);
            }),
            "test.plan: entry point 'prefill' step 0 (embed): arg 1: weight 3 "
            "out of range (the plan has 3 weights)");
}

TEST(PlanFileTest, ConstantIndexOutOfRange) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[2].args[4] = constantArg(1);
            }),
            "test.plan: entry point 'prefill' step 2 (kv_write): arg 4: "
            "constant 1 out of range (the plan has 1 constant)");
}

TEST(PlanFileTest, KvCacheLayerOutOfRange) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[2].args[0] = kvCacheArg(3);
            }),
            "test.plan: entry point 'prefill' step 2 (kv_write): arg 0: "
            "KV-cache layer 3 out of range (the model has 3 cache layers)");
}

TEST(PlanFileTest, ArenaOffsetOutOfRange) {
  // The decode arena is 32768 bytes: offset 32768 is one past its end.
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[1].launches[0].args[2] = arenaArg(32768);
            }),
            "test.plan: entry point 'decode' step 0 (embed): arg 2: arena "
            "offset 32768 is outside the arena (32768 bytes)");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[1].launches[0].args[2] = arenaArg(32767);
            }),
            "");
}

TEST(PlanFileTest, InputNotListed) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[0].args[0] = inputArg(StepInput::Hidden);
            }),
            "test.plan: entry point 'prefill' step 0 (embed): arg 0: input "
            "'hidden' is not among the entry point's inputs");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[0].args[0].index = 9;
            }),
            "test.plan: entry point 'prefill' step 0 (embed): arg 0: input 9 "
            "is not a StepInput");
}

TEST(PlanFileTest, BadGridDivisor) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].grid[0] = dim(SizeUnit::Tokens, 1, 0);
            }),
            "test.plan: entry point 'prefill' step 1 (rms_norm): grid.x: "
            "divisor 0 must be at least 1");
}

TEST(PlanFileTest, BadGridShapeAndLimits) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].grid.pop_back();
            }),
            "test.plan: entry point 'prefill' step 1 (rms_norm): grid has 2 "
            "dimensions, needs 3");
  // 65536 blocks in y at T = max_tokens = 64.
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].grid[1] = dim(SizeUnit::Tokens, 1024);
            }),
            "test.plan: entry point 'prefill' step 1 (rms_norm): grid.y = "
            "1024*T exceeds CUDA's limit of 65535 at the plan's limits");
  // The same grid is fine for a launch that only runs while T <= 32 ...
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].grid[1] = dim(SizeUnit::Tokens, 1024);
              s.entries[0].launches[1].when = SizeRange(SizeUnit::Tokens, 1, 0, 32);
            }),
            "");
  // ... but not for one that runs up to T = 64.
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].grid[1] = dim(SizeUnit::Tokens, 1024);
              s.entries[0].launches[1].when = SizeRange(SizeUnit::Tokens, 1, 33, 64);
            }),
            "test.plan: entry point 'prefill' step 1 (rms_norm): grid.y = "
            "1024*T exceeds CUDA's limit of 65535 at the plan's limits");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].when = SizeRange(SizeUnit::Tokens, 1, 8, 4);
            }),
            "test.plan: entry point 'prefill' step 1 (rms_norm): when: 8 <= 1 x unit 1 "
            "<= 4 is not a valid range");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].alsoWhen = SizeRange(SizeUnit::ResumedRuns, 0, 0, 0);
            }),
            "test.plan: entry point 'prefill' step 1 (rms_norm): also_when: 0 <= 0 x "
            "unit 4 <= 0 is not a valid range");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].alsoWhen =
                  SizeRange(static_cast<SizeUnit>(9), 1, 0, 0);
            }),
            "test.plan: entry point 'prefill' step 1 (rms_norm): also_when: 0 <= 1 x "
            "unit 9 <= 0 is not a valid range");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].when = SizeRange(SizeUnit::Tokens, 1, 0, 32);
              s.entries[0].launches[1].alsoWhen = SizeRange(SizeUnit::ResumedRuns, 1, 0, 0);
            }),
            "");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].grid[2] = dim(SizeUnit::Tokens, -1);
            }),
            "test.plan: entry point 'prefill' step 1 (rms_norm): grid.z: "
            "multiplier -1 must not be negative");
}

TEST(PlanFileTest, BadBlock) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].block = {1024, 2, 1};
            }),
            "test.plan: entry point 'prefill' step 1 (rms_norm): block (1024, "
            "2, 1) has 2048 threads, more than 1024");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].block = {256, 0, 1};
            }),
            "test.plan: entry point 'prefill' step 1 (rms_norm): block.y is 0, "
            "must be at least 1");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].block = {256};
            }),
            "test.plan: entry point 'prefill' step 1 (rms_norm): block has 1 "
            "dimension, needs 3");
}

TEST(PlanFileTest, BadArgs) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].args[4].hasSize = false;
            }),
            "test.plan: entry point 'prefill' step 1 (rms_norm): arg 4: int "
            "argument without a size");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].args[4] =
                  intArg(SizeUnit::Tokens, int64_t{1} << 26);
            }),
            "test.plan: entry point 'prefill' step 1 (rms_norm): arg 4: int "
            "67108864*T does not fit in 32 bits at the limits");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].args[5] = floatArg(1e300);
            }),
            "test.plan: entry point 'prefill' step 1 (rms_norm): arg 5: float "
            "1e+300 is not a finite float");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].args[0].kind = static_cast<ArgKind>(9);
            }),
            "test.plan: entry point 'prefill' step 1 (rms_norm): arg 0: kind 9 "
            "is not an ArgKind");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].args[0].space = static_cast<Space>(6);
            }),
            "test.plan: entry point 'prefill' step 1 (rms_norm): arg 0: space 6 "
            "is not a Space");
}

//===----------------------------------------------------------------------===//
// Tensor maps
//===----------------------------------------------------------------------===//

/// The small plan's tensor map: rms_norm's arg 6, over weight#2 (F8_E4M3
/// [2, 8, 16], 256 bytes) as dims [16, 8, 2], box [16, 8, 1], swizzle 32.
MapSpec &smallMap(PlanSpec &s) { return *s.entries[0].launches[1].args[6].map; }

/// An arena tensor of `dims` (innermost first) at `offset` replaces it.
void useArenaMap(PlanSpec &s, int64_t offset, std::vector<Size> dims,
                 std::vector<uint32_t> box, uint32_t swizzleBytes = 0) {
  s.entries[0].launches[1].args[6] = tensorMapArg(
      arenaArg(offset), {DType::BF16, std::move(dims), std::move(box),
                         swizzleBytes});
}

const char *const kMapArg =
    "test.plan: entry point 'prefill' step 1 (rms_norm): arg 6: ";

TEST(PlanFileTest, TensorMapsVerify) {
  // Rows of T: 16 bf16 columns (32 bytes), 64 rows at the limits = 2048 bytes.
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              useArenaMap(s, 8192, {constantSize(16), Size(SizeUnit::Tokens, 1)},
                          {16, 64}, 32);
            }),
            "");
  // Every swizzle span, each as wide as the box row allows.
  for (uint32_t swizzle : {0u, 32u, 64u, 128u})
    EXPECT_EQ(errorAfter([&](PlanSpec &s) {
                useArenaMap(s, 8192, {constantSize(64), Size(SizeUnit::Tokens, 1)},
                            {swizzle ? swizzle / 2 : 64, 8}, swizzle);
              }),
              "")
        << "swizzle " << swizzle;
}

TEST(PlanFileTest, TensorMapBox) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) { smallMap(s).box = {16, 300, 1}; }),
            std::string(kMapArg) + "tensor_map: box[1] = 300 is not in 1..256");
  EXPECT_EQ(errorAfter([](PlanSpec &s) { smallMap(s).box = {16, 8, 0}; }),
            std::string(kMapArg) + "tensor_map: box[2] = 0 is not in 1..256");
  EXPECT_EQ(errorAfter([](PlanSpec &s) { smallMap(s).box = {8, 8, 1}; }),
            std::string(kMapArg) +
                "tensor_map: box[0] = 8 F8_E4M3 elements is 8 bytes, not a "
                "multiple of 16");
  EXPECT_EQ(errorAfter([](PlanSpec &s) { smallMap(s).box = {64, 8, 1}; }),
            std::string(kMapArg) +
                "tensor_map: box[0] = 64 F8_E4M3 elements is 64 bytes, more "
                "than the 32-byte swizzle span");
  // Without a swizzle the box row may be as long as TMA allows.
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              smallMap(s).box = {256, 8, 1};
              smallMap(s).swizzleBytes = 0;
            }),
            "");
}

TEST(PlanFileTest, TensorMapSwizzle) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) { smallMap(s).swizzleBytes = 48; }),
            std::string(kMapArg) +
                "tensor_map: swizzle_bytes 48 is not 0, 32, 64 or 128");
  EXPECT_EQ(errorAfter([](PlanSpec &s) { smallMap(s).swizzleBytes = 256; }),
            std::string(kMapArg) +
                "tensor_map: swizzle_bytes 256 is not 0, 32, 64 or 128");
}

TEST(PlanFileTest, TensorMapRank) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) { smallMap(s).box = {16, 8}; }),
            std::string(kMapArg) +
                "tensor_map: box [16, 8] has 2 entries, but dims [16, 8, 2] "
                "has 3");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              smallMap(s).dims.clear();
              smallMap(s).box.clear();
            }),
            std::string(kMapArg) +
                "tensor_map: dims [] has 0 entries, needs 1 to 5");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              smallMap(s).dims = std::vector<Size>(6, constantSize(1));
              smallMap(s).box = std::vector<uint32_t>(6, 1);
            }),
            std::string(kMapArg) +
                "tensor_map: dims [1, 1, 1, 1, 1, 1] has 6 entries, needs 1 "
                "to 5");
}

TEST(PlanFileTest, TensorMapFields) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].args[6].map.reset();
            }),
            std::string(kMapArg) + "tensor map argument without a tensor_map");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].args[6].space = Space::Null;
            }),
            std::string(kMapArg) +
                "a tensor map needs a buffer, but its space is Null");
  // The buffer is checked as for a Buffer argument.
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].launches[1].args[6].index = 3;
            }),
            std::string(kMapArg) +
                "weight 3 out of range (the plan has 3 weights)");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              smallMap(s).dtype = static_cast<DType>(9);
            }),
            std::string(kMapArg) + "tensor_map: dtype 9 has no CUtensorMap "
                                   "data type");
  EXPECT_EQ(errorAfter([](PlanSpec &s) { smallMap(s).dims[2] = constantSize(0); }),
            std::string(kMapArg) + "tensor_map: dims[2] = 0 must be positive");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              smallMap(s).dims[2] = Size(static_cast<SizeUnit>(7), 1);
            }),
            std::string(kMapArg) +
                "tensor_map: dims[2]: unit 7 is not a SizeUnit");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              smallMap(s).dims[2] = constantSize(int64_t{1} << 33);
            }),
            std::string(kMapArg) +
                "tensor_map: dims[2] = 8589934592 exceeds TMA's limit of 2^32 "
                "at the plan's limits");
}

TEST(PlanFileTest, TensorMapStrides) {
  // 8 bytes between rows: TMA needs multiples of 16.
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              smallMap(s).dims = {constantSize(8), constantSize(16),
                                  constantSize(2)};
            }),
            std::string(kMapArg) +
                "tensor_map: dims [8, 16, 2]: the stride of dims[1] is 8 "
                "bytes, not a multiple of 16");
  // A stride that depends on the step is checked at its smallest.
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              useArenaMap(s, 8192,
                          {Size(SizeUnit::Sequences, 4), constantSize(4)},
                          {8, 4});
            }),
            std::string(kMapArg) +
                "tensor_map: dims [4*B, 4]: the stride of dims[1] is 8 bytes "
                "when T, B and P are 1, not a multiple of 16");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              useArenaMap(s, 8192,
                          {Size(SizeUnit::Sequences, 8), constantSize(4)},
                          {8, 4});
            }),
            "");
}

TEST(PlanFileTest, TensorMapInsideItsBuffer) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) { smallMap(s).dims[2] = constantSize(3); }),
            std::string(kMapArg) +
                "tensor_map: F8_E4M3 [16, 8, 3] is 384 bytes at the plan's "
                "limits, more than the 256 bytes of its buffer");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              useArenaMap(s, 8200, {constantSize(16), Size(SizeUnit::Tokens, 1)},
                          {16, 64});
            }),
            std::string(kMapArg) +
                "tensor_map: arena offset 8200 is not a multiple of 16 (TMA "
                "reads from 16-byte aligned addresses)");
  // 64 rows of 32 bytes from 65024, 512 bytes before the arena's end.
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              useArenaMap(s, 65024, {constantSize(16), Size(SizeUnit::Tokens, 1)},
                          {16, 64});
            }),
            std::string(kMapArg) +
                "tensor_map: BF16 [16, T] is 2048 bytes at the plan's limits, "
                "more than the 512 bytes from its offset to the arena's end");
  // A launch that only runs while T <= 16 reads at most 16 rows.
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              useArenaMap(s, 65024, {constantSize(16), Size(SizeUnit::Tokens, 1)},
                          {16, 64});
              s.entries[0].launches[1].when = SizeRange(SizeUnit::Tokens, 1, 0, 16);
            }),
            "");
}

TEST(PlanFileTest, OutputOutsideArena) {
  // 4 sequences x 32 floats = 512 bytes from 32600 end past 32768.
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.entries[1].outputs[0].offset = 32600; }),
            "test.plan: entry point 'decode': output 0: F32 [B, 32] at "
            "arena+32600 does not fit in the arena (32768 bytes) at the plan's "
            "limits");
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.entries[1].outputs[0].offset = 32256; }),
            "");
}

TEST(PlanFileTest, SamplerNeedsF32Logits) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].outputs[0].dtype = DType::BF16;
            }),
            "test.plan: entry point 'prefill': output 0: the sampler reads "
            "output 0 as F32 logits, but it is BF16");
}

TEST(PlanFileTest, UnknownStepType) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.entries[1].writeNoneSteps = true; }),
            "test.plan: entry point 'decode' step 0: step type 0 is not one "
            "this runtime runs");
}

TEST(PlanFileTest, DuplicateEntryPointsAndInputs) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.entries[1].name = "prefill"; }),
            "test.plan: entry point 'prefill' appears twice");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.entries[0].inputs.push_back(StepInput::Tokens);
            }),
            "test.plan: entry point 'prefill': input 'tokens' is listed twice");
}

TEST(PlanFileTest, InconsistentWeights) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.weights[0].dtype = DType::F32; }),
            "test.plan: weight 0 (model.embed_tokens.weight): Copy from BF16 "
            "to F32 (Copy keeps the dtype)");
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.weights[0].shape = {32, 15}; }),
            "test.plan: weight 0 (model.embed_tokens.weight): Copy of [32, 16] "
            "into [32, 15]: element counts differ");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.weights[1].sources[1].shape = {2, 2};
            }),
            "test.plan: weight 1 (model.layers.0.self_attn.kv_b_proj.weight): "
            "scales of [40, 20] in blocks of [32, 8] must be [2, 3], got [2, "
            "2]");
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.weights[1].block = {32}; }),
            "test.plan: weight 1 (model.layers.0.self_attn.kv_b_proj.weight): "
            "DequantizeBf16 block must be [rows, cols] of positive sizes, got "
            "[32]");
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.weights[1].sources.pop_back(); }),
            "test.plan: weight 1 (model.layers.0.self_attn.kv_b_proj.weight): "
            "DequantizeBf16 takes 2 sources (tensor, scales), got 1");
  EXPECT_EQ(errorAfter([](PlanSpec &s) {
              s.weights[2].sources[1].shape = {8, 15};
            }),
            "test.plan: weight 2 (model.layers.1.mlp.experts.0.up_proj.weight): "
            "Stack source 1 (F8_E4M3 [8, 15]) differs from source 0 (F8_E4M3 "
            "[8, 16])");
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.weights[2].shape = {3, 8, 16}; }),
            "test.plan: weight 2 (model.layers.1.mlp.experts.0.up_proj.weight): "
            "Stack of 2 x [8, 16] into [3, 8, 16]: element counts differ");
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.weights[0].sources.clear(); }),
            "test.plan: weight 0: no checkpoint sources");
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.weights[0].shape = {32, -16}; }),
            "test.plan: weight 0 (model.embed_tokens.weight): shape [32, -16] "
            "has a negative dimension");
}

TEST(PlanFileTest, ConstantDataSize) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.constants[0].data.pop_back(); }),
            "test.plan: constant 0: F32 [4] needs 16 bytes of data, has 15");
}

TEST(PlanFileTest, EmptyModule) {
  EXPECT_EQ(errorAfter([](PlanSpec &s) { s.moduleSizes[0] = 0; }),
            "test.plan: module 0: cubin is empty");
}

//===----------------------------------------------------------------------===//
// Gemm steps
//===----------------------------------------------------------------------===//

/// The message of verifying gemmPlan() after `edit` of its Gemm step (and
/// the plan); empty when it passes.
std::string gemmErrorAfter(const std::function<void(GemmSpec &, PlanSpec &)> &edit) {
  PlanSpec spec = gemmPlan();
  edit(spec.entries[0].gemms[0], spec);
  Status status = verify(buildPlan(spec));
  return status.ok() ? "" : status.message();
}

const std::string kGemmStep =
    "test.plan: entry point 'prefill' step 3 (fp8_gemm): ";

TEST(PlanFileGemmTest, ValidGemmVerifies) {
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &, PlanSpec &) {}), "");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.cDtype = DType::BF16;
              g.rows = Size(SizeUnit::Sequences, 2);
              g.rowAlignment = 1;
              g.when = SizeRange(SizeUnit::Tokens, 1, 0, 32);
              g.alsoWhen = SizeRange(SizeUnit::ResumedRuns, 1, 0, 0);
            }),
            "");
  // Constant rows, and operands in a constant or an input (whose sizes the
  // plan does not know).
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.rows = constantSize(3);
              g.bScales = constantArg(0);
              g.n = 128;
            }),
            "");
}

TEST(PlanFileGemmTest, OperandsMustBeBuffers) {
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) { g.aScales.reset(); }),
            kGemmStep + "a_scales is missing");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.c = intArg(SizeUnit::Tokens, 1);
            }),
            kGemmStep + "c: kind Int is not Buffer (a Gemm's operands are "
                        "plain buffers)");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.a = tensorMapArg(arenaArg(0), {DType::F8_E4M3,
                                               {constantSize(512)}, {128}, 128});
            }),
            kGemmStep + "a: kind TensorMap is not Buffer (a Gemm's operands "
                        "are plain buffers)");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) { g.b = nullArg(); }),
            kGemmStep + "b: space is Null, but a Gemm reads or writes every "
                        "operand");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.a->space = static_cast<Space>(6);
            }),
            kGemmStep + "a: space 6 is not a Space");
}

TEST(PlanFileGemmTest, OperandBuffers) {
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) { g.b = weightArg(5); }),
            kGemmStep + "b: weight 5 out of range (the plan has 5 weights)");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.c = arenaArg(262144);
            }),
            kGemmStep + "c: arena offset 262144 is outside the arena (262144 "
                        "bytes)");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.a = inputArg(StepInput::Hidden);
            }),
            kGemmStep + "a: input 'hidden' is not among the entry point's "
                        "inputs");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.aScales = arenaArg(32776);
            }),
            kGemmStep + "a_scales: arena offset 32776 is not a multiple of 16 "
                        "(cuBLASLt reads 16-byte aligned addresses)");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) { g.b = weightArg(0); }),
            kGemmStep + "b: weight 0 is BF16, but a Gemm's b is F8_E4M3");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.bScales = weightArg(3);
            }),
            kGemmStep + "b_scales: weight 3 is F8_E4M3, but a Gemm's b_scales "
                        "is F32");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) { g.a = constantArg(0); }),
            kGemmStep + "a: constant 0 is F32, but a Gemm's a is F8_E4M3");
}

TEST(PlanFileGemmTest, Shape) {
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) { g.n = 0; }),
            kGemmStep + "n is 0, must be at least 1");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) { g.k = -512; }),
            kGemmStep + "k is -512, must be at least 1");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) { g.k = 504; }),
            kGemmStep + "k 504 is not a multiple of 16 (cuBLASLt reads FP8 "
                        "rows of 16-byte multiples)");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) { g.k = 256; }),
            kGemmStep + "k 256 is 2 blocks of 128, not a multiple of 4 "
                        "(cuBLASLt's block-scaled GEMMs need that)");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.cDtype = DType::F16;
            }),
            kGemmStep + "c_dtype F16 is not F32 or BF16");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.cDtype = static_cast<DType>(9);
            }),
            kGemmStep + "c_dtype 9 is not F32 or BF16");
}

TEST(PlanFileGemmTest, Rows) {
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) { g.rowAlignment = 0; }),
            kGemmStep + "row_alignment 0 is not a power of two");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) { g.rowAlignment = 24; }),
            kGemmStep + "row_alignment 24 is not a power of two");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) { g.hasRows = false; }),
            kGemmStep + "rows is missing");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.rows = Size(static_cast<SizeUnit>(9), 1);
            }),
            kGemmStep + "rows: unit 9 is not a SizeUnit");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.rows = Size(SizeUnit::Tokens, 0);
            }),
            kGemmStep + "rows 0: multiplier 0 must be at least 1");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.rows = Size(SizeUnit::PagesPerSequence, 1);
            }),
            kGemmStep + "rows P count pages, which the plan does not bound; a "
                        "Gemm's rows are a multiple of T, B or 1");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.rows = Size(SizeUnit::Tokens, INT64_MAX / 8);
            }),
            kGemmStep + "rows 1152921504606846975*T overflow at the plan's "
                        "limits");
}

TEST(PlanFileGemmTest, SizeGuards) {
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.when = SizeRange(SizeUnit::Tokens, 1, 8, 4);
            }),
            kGemmStep + "when: 8 <= 1 x unit 1 <= 4 is not a valid range");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.alsoWhen = SizeRange(SizeUnit::ResumedRuns, 0, 0, 0);
            }),
            kGemmStep + "also_when: 0 <= 0 x unit 4 <= 0 is not a valid range");
}

TEST(PlanFileGemmTest, OperandsInsideTheirBuffers) {
  // c is F32 [M, 256]: 1024 bytes a row. 32 rows fit before the arena's end.
  auto cNearTheEnd = [](GemmSpec &g, PlanSpec &) {
    g.c = arenaArg(262144 - 32 * 1024);
  };
  EXPECT_EQ(gemmErrorAfter(cNearTheEnd),
            kGemmStep + "c: F32 [64, 256] is 65536 bytes at the plan's limits "
                        "(rows T rounded up to 16), more than the 32768 bytes "
                        "from its offset to the arena's end");
  // While T <= 17, M = 32 (rounded up to 16): it fits ...
  EXPECT_EQ(gemmErrorAfter([&](GemmSpec &g, PlanSpec &s) {
              cNearTheEnd(g, s);
              g.when = SizeRange(SizeUnit::Tokens, 1, 0, 17);
            }),
            "");
  // ... but not rounded up to 64.
  EXPECT_EQ(gemmErrorAfter([&](GemmSpec &g, PlanSpec &s) {
              cNearTheEnd(g, s);
              g.when = SizeRange(SizeUnit::Tokens, 1, 0, 17);
              g.rowAlignment = 64;
            }),
            kGemmStep + "c: F32 [64, 256] is 65536 bytes at the plan's limits "
                        "(rows T rounded up to 64), more than the 32768 bytes "
                        "from its offset to the arena's end");
  // BF16 c is half as large.
  EXPECT_EQ(gemmErrorAfter([&](GemmSpec &g, PlanSpec &s) {
              cNearTheEnd(g, s);
              g.cDtype = DType::BF16;
            }),
            "");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.a = arenaArg(262144 - 16384);
            }),
            kGemmStep + "a: F8_E4M3 [64, 512] is 32768 bytes at the plan's "
                        "limits (rows T rounded up to 16), more than the 16384 "
                        "bytes from its offset to the arena's end");
  // a_scales: 4 blocks of 128 columns x 64 rows, f32.
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.aScales = arenaArg(262144 - 512);
            }),
            kGemmStep + "a_scales: F32 [4, 64] is 1024 bytes at the plan's "
                        "limits (rows T rounded up to 16), more than the 512 "
                        "bytes from its offset to the arena's end");
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) { g.n = 384; }),
            kGemmStep + "b: F8_E4M3 [384, 512] is 196608 bytes, more than "
                        "the 131072 bytes of its buffer");
  // constant#0 holds 4 floats; n = 256 needs 2 x 4.
  EXPECT_EQ(gemmErrorAfter([](GemmSpec &g, PlanSpec &) {
              g.bScales = constantArg(0);
            }),
            kGemmStep + "b_scales: F32 [2, 4] is 32 bytes, more than the 16 "
                        "bytes of its buffer");
}

TEST(PlanFileGemmTest, MemoryNeedsTheWorkspace) {
  std::vector<uint8_t> plain = buildPlan(smallPlan());
  std::vector<uint8_t> withGemm = buildPlan(gemmPlan());
  EXPECT_FALSE(hasGemmSteps(*GetPlan(plain.data())));
  EXPECT_TRUE(hasGemmSteps(*GetPlan(withGemm.data())));
  EXPECT_EQ(memoryNeeds(*GetPlan(plain.data()), 0, 1).gemmWorkspace, 0u);
  MemoryNeeds needs = memoryNeeds(*GetPlan(withGemm.data()), 0, 1);
  EXPECT_EQ(needs.gemmWorkspace, kGemmWorkspaceBytes);
  EXPECT_EQ(needs.total(), needs.weights + needs.arena + needs.stepInputs +
                               kGemmWorkspaceBytes);
  DeviceInfo small{"NVIDIA H100", 9, 0, 132, 1000, 80ull << 30};
  EXPECT_NE(checkDevice(*GetPlan(withGemm.data()), small, needs)
                .message()
                .find(", KV cache 0, cuBLASLt workspace 33554432) but the GPU "
                      "has 1000 free"),
            std::string::npos);
}

//===----------------------------------------------------------------------===//
// Sizes and the device check
//===----------------------------------------------------------------------===//

class DeviceCheckTest : public ::testing::Test {
protected:
  void SetUp() override {
    bytes = buildPlan(smallPlan());
    ASSERT_TRUE(verify(bytes).ok());
  }
  const Plan &plan() const { return *GetPlan(bytes.data()); }
  std::vector<uint8_t> bytes;
};

TEST_F(DeviceCheckTest, WeightLayoutIsAlignedAndComplete) {
  WeightLayout layout = layoutWeights(plan());
  // embed 32x16 bf16 = 1024; kv_b 40x20 bf16 = 1600 -> 1792; experts
  // 2x8x16 fp8 = 256; the constant (16 bytes) -> 256.
  EXPECT_EQ(layout.weightOffsets, (std::vector<uint64_t>{0, 1024, 2816}));
  EXPECT_EQ(layout.constantOffsets, (std::vector<uint64_t>{3072}));
  EXPECT_EQ(layout.totalBytes, 3328u);
  EXPECT_EQ(largestArenaBytes(plan()), 65536u);
}

TEST_F(DeviceCheckTest, MemoryNeeds) {
  MemoryNeeds needs = memoryNeeds(plan(), 1000000, 3);
  EXPECT_EQ(needs.weights, 3328u);
  EXPECT_EQ(needs.arena, 65536u);
  // tokens, positions, token_seq (64 x 4 -> 256 each), last_rows, sampled
  // (4 x 4 -> 256 each), block table (4 x 3 x 4 -> 256); nobody reads hidden.
  EXPECT_EQ(needs.stepInputs, 6 * 256u);
  EXPECT_EQ(needs.kvCache, 1000000u);
  EXPECT_EQ(needs.total(), 3328u + 65536u + 1536u + 1000000u);
}

TEST_F(DeviceCheckTest, ArchitectureMustMatch) {
  DeviceInfo h100{"NVIDIA H100 80GB HBM3", 9, 0, 132, 80ull << 30, 80ull << 30};
  MemoryNeeds needs = memoryNeeds(plan(), 0, 1);
  EXPECT_TRUE(checkDevice(plan(), h100, needs).ok());

  DeviceInfo l40s{"NVIDIA L40S", 8, 9, 142, 40ull << 30, 48ull << 30};
  EXPECT_EQ(checkDevice(plan(), l40s, needs).message(),
            "the plan is compiled for sm_90a (compute capability 9.0 exactly), "
            "but NVIDIA L40S has compute capability 8.9; recompile with dsv3c "
            "--target for this GPU");
}

TEST_F(DeviceCheckTest, TargetCompatibility) {
  PlanSpec ampereSpec = smallPlan();
  ampereSpec.arch = "sm_80";
  ampereSpec.computeMajor = 8;
  std::vector<uint8_t> ampereBytes = buildPlan(ampereSpec);
  const Target &ampere = *GetPlan(ampereBytes.data())->target();
  EXPECT_TRUE(targetRunsOn(ampere, 8, 0));
  EXPECT_TRUE(targetRunsOn(ampere, 8, 6));
  EXPECT_TRUE(targetRunsOn(ampere, 8, 9));
  EXPECT_FALSE(targetRunsOn(ampere, 9, 0)); // SASS does not cross majors
  EXPECT_FALSE(targetRunsOn(ampere, 7, 5));
  const Target &hopper = *plan().target(); // sm_90a
  EXPECT_TRUE(targetRunsOn(hopper, 9, 0));
  EXPECT_FALSE(targetRunsOn(hopper, 10, 0));
  EXPECT_FALSE(targetRunsOn(hopper, 8, 9));

  DeviceInfo h100{"NVIDIA H100", 9, 0, 132, 80ull << 30, 80ull << 30};
  EXPECT_EQ(checkDevice(*GetPlan(ampereBytes.data()), h100,
                        memoryNeeds(plan(), 0, 1))
                .message(),
            "the plan is compiled for sm_80 (compute capability 8.0 to 8.x), "
            "but NVIDIA H100 has compute capability 9.0; recompile with dsv3c "
            "--target for this GPU");
}

TEST_F(DeviceCheckTest, TooLittleMemory) {
  MemoryNeeds needs = memoryNeeds(plan(), 5000000, 3);
  DeviceInfo small{"NVIDIA H100 80GB HBM3", 9, 0, 132, 4000000, 80ull << 30};
  EXPECT_EQ(checkDevice(plan(), small, needs).message(),
            "plan needs 5070400 bytes (weights 3328, arena 65536, step inputs "
            "1536, KV cache 5000000) but the GPU has 4000000 free");
  small.free_bytes = needs.total();
  EXPECT_TRUE(checkDevice(plan(), small, needs).ok());
}

} // namespace
