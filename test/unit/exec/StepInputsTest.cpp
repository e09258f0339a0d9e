//===- StepInputsTest.cpp - a step's inputs checked before it runs --------===//

#include "TestPlans.h"

#include "runtime/exec/Executor.h"
#include "runtime/plan/PlanFile.h"

#include <gtest/gtest.h>

using namespace dsv3;
using namespace dsv3::exec;
using namespace dsv3::testing;

namespace {

class StepInputsTest : public ::testing::Test {
protected:
  void SetUp() override {
    bytes = buildPlan(smallPlan()); // max 64 tokens, 4 sequences, pages of 16
    ASSERT_TRUE(plan::verifyPlan(bytes.data(), bytes.size(), "small.plan").ok());
    // Two sequences: 20 tokens (pages 0, 1) and 3 tokens (page 2).
    for (int t = 0; t < 23; ++t) {
      inputs.tokens.push_back(t % 32);
      inputs.positions.push_back(t < 20 ? t : t - 20);
      inputs.tokenSeq.push_back(t < 20 ? 0 : 1);
    }
    inputs.lastRows = {19, 22};
    inputs.pagesPerSequence = 2;
    inputs.blockTable = {0, 1, 2, kUnusedPage};
  }
  const plan::Plan &planRef() const { return *plan::GetPlan(bytes.data()); }
  Status check(StepSizes &sizes) const {
    const plan::EntryPoint *prefill = findEntryPoint(planRef(), "prefill");
    return checkStepInputs(planRef(), *prefill, inputs, /*numPages=*/8,
                           /*maxPagesPerSequence=*/4, sizes);
  }
  std::string error() const {
    StepSizes sizes;
    Status status = check(sizes);
    return status.ok() ? "" : status.message();
  }

  std::vector<uint8_t> bytes;
  StepInputs inputs;
};

TEST_F(StepInputsTest, ValidPrefill) {
  StepSizes sizes;
  Status status = check(sizes);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(sizes.tokens, 23);
  EXPECT_EQ(sizes.sequences, 2);
  EXPECT_EQ(sizes.pagesPerSequence, 2);
  EXPECT_EQ(findEntryPoint(planRef(), "mtp_draft"), nullptr);
}

TEST_F(StepInputsTest, Limits) {
  inputs.tokens.assign(65, 1);
  EXPECT_EQ(error(), "entry point 'prefill': a step of 65 tokens is more than "
                     "the plan's max_tokens (64)");
  inputs.tokens.clear();
  EXPECT_EQ(error(), "entry point 'prefill': a step needs at least one token");
  SetUp();
  inputs.lastRows = {1, 2, 3, 4, 5};
  EXPECT_EQ(error(), "entry point 'prefill': a step of 5 sequences is more "
                     "than the plan's max_sequences (4)");
}

TEST_F(StepInputsTest, Values) {
  inputs.tokens[5] = 32;
  EXPECT_EQ(error(), "entry point 'prefill': input 'tokens': token 5 is 32, "
                     "outside the vocabulary (0..31)");
  inputs.tokens[5] = 5;
  inputs.tokenSeq[21] = 2;
  EXPECT_EQ(error(), "entry point 'prefill': input 'token_seq': token 21 is in "
                     "sequence 2, but the step has 2 (0..1)");
  inputs.tokenSeq[21] = 1;
  inputs.lastRows[1] = 23;
  EXPECT_EQ(error(), "entry point 'prefill': input 'last_rows': sequence 1 "
                     "ends at row 23, but the step has 23 tokens");
  inputs.lastRows[1] = 22;
  inputs.positions.pop_back();
  EXPECT_EQ(error(), "entry point 'prefill': input 'positions' has 22 values, "
                     "expected 23");
}

TEST_F(StepInputsTest, BlockTable) {
  inputs.blockTable[3] = 8;
  EXPECT_EQ(error(), "entry point 'prefill': input 'block_table': sequence 1 "
                     "entry 1 is page 8, but the cache has 8 pages");
  inputs.blockTable = {0, kUnusedPage, 2, kUnusedPage};
  EXPECT_EQ(error(), "entry point 'prefill': input 'block_table': sequence 0 "
                     "reaches position 19 but has no page at entry 1");
  inputs.blockTable = {0, 1, 2, kUnusedPage};
  inputs.positions[19] = 32;
  EXPECT_EQ(error(), "entry point 'prefill': sequence 0 reaches position 32, "
                     "beyond its block table of 2 pages of 16 tokens");
  inputs.positions[19] = 19;
  inputs.pagesPerSequence = 5;
  EXPECT_EQ(error(), "entry point 'prefill': the block table is 5 pages wide; "
                     "it must be 1 to 4");
  inputs.pagesPerSequence = 3;
  EXPECT_EQ(error(), "entry point 'prefill': input 'block_table' has 4 values, "
                     "expected 6");
}

// A step replayed as a CUDA graph widens its block table to a power of two
// of pages (at most the executor's widest), so that graphs are few.
TEST(GraphBlockTable, WidthIsTheNextPowerOfTwoUpToTheWidest) {
  EXPECT_EQ(graphBlockTableWidth(1, 64), 1);
  EXPECT_EQ(graphBlockTableWidth(2, 64), 2);
  EXPECT_EQ(graphBlockTableWidth(3, 64), 4);
  EXPECT_EQ(graphBlockTableWidth(17, 64), 32);
  EXPECT_EQ(graphBlockTableWidth(33, 40), 40);
  EXPECT_EQ(graphBlockTableWidth(40, 40), 40);
  // Never narrower than the table itself.
  EXPECT_EQ(graphBlockTableWidth(5, 4), 5);
}

TEST(GraphBlockTable, PaddingKeepsEachSequencesPagesInPlace) {
  // Two sequences, 3 pages wide: pages {7, 8, -1} and {2, 5, 9}.
  const std::vector<int32_t> table = {7, 8, kUnusedPage, 2, 5, 9};
  std::vector<int32_t> padded = {123}; // replaced, not appended to
  padBlockTable(table, 2, 3, 4, padded);
  const std::vector<int32_t> expected = {7, 8, kUnusedPage, kUnusedPage,
                                         2, 5, 9, kUnusedPage};
  EXPECT_EQ(padded, expected);
}

} // namespace
