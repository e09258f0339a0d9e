//===- WeightCheckTest.cpp - plan weights against a checkpoint ------------===//
//
// checkWeightSources runs before any upload: every source of every weight
// must be in the checkpoint with the plan's dtype and shape, and one error
// names the first problem and counts the rest.
//
//===----------------------------------------------------------------------===//

#include "TestPlans.h"

#include "runtime/Checkpoint.h"
#include "runtime/exec/WeightLoader.h"
#include "runtime/plan/PlanFile.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>

using namespace dsv3;
using namespace dsv3::testing;

namespace {

class WeightCheckTest : public ::testing::Test {
protected:
  void SetUp() override {
    char pattern[] = "/tmp/dsv3-weight-check-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    directory = pattern;
    bytes = buildPlan(smallPlan());
    ASSERT_TRUE(plan::verifyPlan(bytes.data(), bytes.size(), "small.plan").ok());
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(directory, ignored);
  }
  const plan::Plan &planRef() const { return *plan::GetPlan(bytes.data()); }

  /// Writes the small plan's tensors, with `edit` applied to the list first.
  void writeCheckpoint(const std::function<void(std::vector<SourceSpec> &)> &edit) {
    std::vector<SourceSpec> tensors;
    for (const WeightSpec &weight : smallPlan().weights)
      for (const SourceSpec &source : weight.sources)
        tensors.push_back(source);
    edit(tensors);
    SafetensorsWriter writer;
    for (const SourceSpec &tensor : tensors) {
      Status added = writer.addTensor(
          tensor.name, exec::checkpointDtype(tensor.dtype), tensor.shape,
          [](uint64_t offset, std::uint8_t *out, std::size_t size) {
            for (std::size_t i = 0; i < size; ++i)
              out[i] = static_cast<std::uint8_t>(offset + i);
            return Status::success();
          });
      ASSERT_TRUE(added.ok()) << added.message();
    }
    Status written = writer.write(directory + "/model.safetensors");
    ASSERT_TRUE(written.ok()) << written.message();
  }

  std::string directory;
  std::vector<uint8_t> bytes;
};

TEST_F(WeightCheckTest, MatchingCheckpoint) {
  writeCheckpoint([](std::vector<SourceSpec> &) {});
  StatusOr<Checkpoint> checkpoint = Checkpoint::open(directory);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().message();
  Status checked = exec::checkWeightSources(planRef(), *checkpoint);
  EXPECT_TRUE(checked.ok()) << checked.message();
}

TEST_F(WeightCheckTest, OneMismatch) {
  writeCheckpoint([](std::vector<SourceSpec> &tensors) {
    tensors[2].shape = {3, 3}; // the kv_b scales
  });
  StatusOr<Checkpoint> checkpoint = Checkpoint::open(directory);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().message();
  EXPECT_EQ(exec::checkWeightSources(planRef(), *checkpoint).message(),
            directory +
                "/model.safetensors: tensor "
                "'model.layers.0.self_attn.kv_b_proj.weight_scale_inv': shape "
                "is [3, 3], expected [2, 3]");
}

TEST_F(WeightCheckTest, FirstProblemAndACountOfTheRest) {
  writeCheckpoint([](std::vector<SourceSpec> &tensors) {
    tensors[0].dtype = plan::DType::F32;  // embed: wrong dtype
    tensors.erase(tensors.begin() + 3);   // expert 0: absent
    tensors.back().shape = {16, 8};       // expert 1: wrong shape
  });
  StatusOr<Checkpoint> checkpoint = Checkpoint::open(directory);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().message();
  EXPECT_EQ(exec::checkWeightSources(planRef(), *checkpoint).message(),
            directory +
                "/model.safetensors: tensor 'model.embed_tokens.weight': dtype "
                "is F32, expected BF16 (and 2 more checkpoint tensors missing "
                "or different)");
}

TEST_F(WeightCheckTest, Dtypes) {
  EXPECT_EQ(exec::checkpointDtype(plan::DType::BF16), Dtype::BF16);
  EXPECT_EQ(exec::checkpointDtype(plan::DType::F8_E4M3), Dtype::F8_E4M3);
  EXPECT_EQ(exec::checkpointDtype(plan::DType::F32), Dtype::F32);
  EXPECT_EQ(exec::checkpointDtype(plan::DType::F16), Dtype::F16);
  EXPECT_EQ(exec::checkpointDtype(plan::DType::I32), Dtype::I32);
}

} // namespace
