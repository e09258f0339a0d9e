//===- PageAllocatorTest.cpp - KV-cache pages per sequence ----------------===//

#include "runtime/exec/KvCache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

using namespace dsv3;
using namespace dsv3::exec;

namespace {

TEST(PageAllocatorTest, ReserveGrowsAndKeepsPages) {
  PageAllocator pages(10, 64);
  EXPECT_EQ(pages.freePages(), 10);
  ASSERT_TRUE(pages.reserve(7, 65).ok()); // 2 pages
  EXPECT_EQ(pages.pages(7), (std::vector<int32_t>{0, 1}));
  ASSERT_TRUE(pages.reserve(7, 128).ok()); // still 2
  EXPECT_EQ(pages.pages(7), (std::vector<int32_t>{0, 1}));
  ASSERT_TRUE(pages.reserve(3, 1).ok());
  ASSERT_TRUE(pages.reserve(7, 129).ok()); // a third, after sequence 3's
  EXPECT_EQ(pages.pages(7), (std::vector<int32_t>{0, 1, 3}));
  EXPECT_EQ(pages.pages(3), (std::vector<int32_t>{2}));
  EXPECT_EQ(pages.freePages(), 6);
  EXPECT_TRUE(pages.pages(99).empty());
  ASSERT_TRUE(pages.reserve(5, 0).ok()); // nothing needed
  EXPECT_TRUE(pages.pages(5).empty());
  EXPECT_EQ(pages.freePages(), 6);
}

TEST(PageAllocatorTest, ReleaseReturnsEveryPage) {
  PageAllocator pages(4, 16);
  ASSERT_TRUE(pages.reserve(0, 40).ok()); // 3 pages
  pages.release(0);
  EXPECT_EQ(pages.freePages(), 4);
  EXPECT_TRUE(pages.pages(0).empty());
  ASSERT_TRUE(pages.reserve(1, 64).ok()); // all 4, lowest first
  EXPECT_EQ(pages.pages(1), (std::vector<int32_t>{0, 1, 2, 3}));
  pages.release(42); // unknown: nothing happens
  EXPECT_EQ(pages.freePages(), 0);
}

TEST(PageAllocatorTest, FullCacheFailsWithoutChanges) {
  PageAllocator pages(3, 16);
  ASSERT_TRUE(pages.reserve(0, 32).ok());
  Status full = pages.reserve(1, 33);
  EXPECT_EQ(full.message(),
            "KV cache full: sequence 1 needs 3 more pages of 16 tokens for 33 "
            "tokens (it has 0), but only 1 of 3 are free; use more pages "
            "(--kv-pages)");
  EXPECT_EQ(pages.freePages(), 1);
  EXPECT_TRUE(pages.pages(1).empty());
  Status grow = pages.reserve(0, 64);
  EXPECT_FALSE(grow.ok());
  EXPECT_EQ(pages.pages(0), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(pages.freePages(), 1);
}

TEST(PageAllocatorTest, BlockTable) {
  PageAllocator pages(8, 4);
  ASSERT_TRUE(pages.reserve(10, 9).ok()); // pages 0 1 2
  ASSERT_TRUE(pages.reserve(11, 2).ok()); // page 3
  std::vector<int64_t> step = {11, 10};
  EXPECT_EQ(pages.widestSequence(step), 3);
  std::vector<int32_t> table;
  ASSERT_TRUE(pages.fillBlockTable(step, 3, table).ok());
  EXPECT_EQ(table, (std::vector<int32_t>{3, kUnusedPage, kUnusedPage, 0, 1, 2}));
  Status narrow = pages.fillBlockTable(step, 2, table);
  EXPECT_EQ(narrow.message(),
            "sequence 10 owns 3 pages, more than the block table's width 2");
}

TEST(PageAllocatorTest, RandomTrafficNeverSharesOrLeaksPages) {
  std::random_device seeder;
  const unsigned seed = seeder();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 random(seed);
  PageAllocator pages(200, 16);
  std::map<int64_t, int64_t> lengths;
  for (int round = 0; round < 5000; ++round) {
    const int64_t sequence = random() % 20;
    if (random() % 5 == 0) {
      pages.release(sequence);
      lengths.erase(sequence);
    } else {
      const int64_t tokens = lengths[sequence] + random() % 40;
      if (pages.reserve(sequence, tokens).ok())
        lengths[sequence] = tokens;
    }
    // Invariant: owned pages are distinct, cover their tokens exactly, and
    // with the free ones make up every page.
    std::set<int32_t> seen;
    int64_t owned = 0;
    for (auto [id, length] : lengths) {
      const std::vector<int32_t> &list = pages.pages(id);
      ASSERT_EQ(static_cast<int64_t>(list.size()), pages.pagesFor(length));
      for (int32_t page : list) {
        ASSERT_GE(page, 0);
        ASSERT_LT(page, 200);
        ASSERT_TRUE(seen.insert(page).second) << "page " << page << " twice";
      }
      owned += static_cast<int64_t>(list.size());
    }
    ASSERT_EQ(owned + pages.freePages(), 200);
  }
  for (auto [id, length] : lengths)
    pages.release(id);
  EXPECT_EQ(pages.freePages(), 200);
}

} // namespace
