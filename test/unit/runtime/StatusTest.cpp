//===- StatusTest.cpp - Status, StatusOr and their macros -----------------===//

#include "runtime/Status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

using namespace dsv3;

namespace {

Status failIf(bool fail, int code) {
  if (fail)
    return Status::error("step {} failed: {}", code, "disk full");
  return Status::success();
}

StatusOr<std::unique_ptr<int>> makeValue(bool fail) {
  if (fail)
    return Status::error("no value for '{}'", "x");
  return std::make_unique<int>(42);
}

Status twoSteps(bool failFirst, bool failSecond, int &reached) {
  DSV3_RETURN_IF_ERROR(failIf(failFirst, 1));
  reached = 1;
  DSV3_RETURN_IF_ERROR(failIf(failSecond, 2));
  reached = 2;
  return Status::success();
}

StatusOr<int> doubled(bool fail) {
  DSV3_ASSIGN_OR_RETURN(std::unique_ptr<int> value, makeValue(fail));
  return *value * 2;
}

TEST(Status, SuccessAndError) {
  Status ok = Status::success();
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.message(), "");
  Status error = failIf(true, 3);
  EXPECT_FALSE(error.ok());
  EXPECT_EQ(error.message(), "step 3 failed: disk full");
  EXPECT_EQ(error.withPrefix("loader: ").message(),
            "loader: step 3 failed: disk full");
  EXPECT_TRUE(ok.withPrefix("loader: ").ok());
}

TEST(Status, StatusOrHoldsAValueOrAnError) {
  StatusOr<std::unique_ptr<int>> value = makeValue(false);
  ASSERT_TRUE(value.ok());
  EXPECT_TRUE(value.status().ok());
  EXPECT_EQ(**value, 42);
  std::unique_ptr<int> taken = std::move(value).value(); // move-only values
  EXPECT_EQ(*taken, 42);

  StatusOr<std::unique_ptr<int>> error = makeValue(true);
  ASSERT_FALSE(error.ok());
  EXPECT_EQ(error.status().message(), "no value for 'x'");
}

TEST(Status, MacrosReturnTheFirstError) {
  int reached = 0;
  EXPECT_EQ(twoSteps(true, false, reached).message(), "step 1 failed: disk full");
  EXPECT_EQ(reached, 0);
  EXPECT_EQ(twoSteps(false, true, reached).message(), "step 2 failed: disk full");
  EXPECT_EQ(reached, 1);
  EXPECT_TRUE(twoSteps(false, false, reached).ok());
  EXPECT_EQ(reached, 2);

  StatusOr<int> good = doubled(false);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 84);
  StatusOr<int> bad = doubled(true);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "no value for 'x'");
}

TEST(StatusDeathTest, MisuseAborts) {
  EXPECT_DEATH(
      { StatusOr<int> impossible(Status::success()); },
      "StatusOr built from a successful Status");
  EXPECT_DEATH(
      {
        StatusOr<int> error(Status::error("gone"));
        (void)error.value();
      },
      "value of a failed StatusOr read: gone");
}

} // namespace
