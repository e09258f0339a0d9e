// EXPECT_TRUE(contains(message, "part")): whether an error message holds a
// phrase, printing the whole message when it does not (GoogleTest alone, no
// gmock).
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace dsv3::test {

inline ::testing::AssertionResult contains(const std::string &text,
                                           const std::string &part) {
  if (text.find(part) != std::string::npos)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << text << "\"\n    does not contain \"" << part << "\"";
}

} // namespace dsv3::test
