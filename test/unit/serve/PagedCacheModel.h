// A model for serving tests: it keeps a real paged cache of token ids.
// Each step writes its tokens into the rows the block table names and the
// next token is a hash of every row the last token attends to (positions
// 0..p, read through the block table). So a page shared between requests, a
// page read before it was written, or a recompute that refills the cache
// wrongly changes the tokens or fails the step; expectedTokens gives the
// same hash over a request's own history, computed without any cache.
#pragma once

#include "runtime/exec/KvCache.h"
#include "runtime/generate/Generator.h"

#include <functional>
#include <set>
#include <vector>

namespace dsv3::serve::fake {

constexpr int64_t kVocab = 304; // the tiny tokenizer's ids end at 303
constexpr int32_t kUnwritten = -1;

/// The next token after `history` (prompt and generated tokens so far).
inline int32_t hashRule(const std::vector<int32_t> &history) {
  uint64_t h = 1469598103934665603ull;
  for (size_t p = 0; p < history.size(); ++p) {
    h ^= static_cast<uint64_t>(history[p]) * 31 + p + 1;
    h *= 1099511628211ull;
  }
  return static_cast<int32_t>((h >> 17) % 250);
}

inline std::vector<int32_t> expectedTokens(std::vector<int32_t> history, int64_t n) {
  std::vector<int32_t> out;
  for (int64_t i = 0; i < n; ++i) {
    out.push_back(hashRule(history));
    history.push_back(out.back());
  }
  return out;
}

class PagedCacheModel : public generate::ModelSteps {
public:
  PagedCacheModel(int64_t numPages, int64_t pageSize)
      : pageSize_(pageSize), rows_(numPages * pageSize, kUnwritten) {}

  /// Replaces the hash (tests of text and EOS).
  std::function<int32_t(const std::vector<int32_t> &)> rule = hashRule;
  int64_t failAtStep = -1;
  int64_t steps = 0;
  int64_t columns = kVocab + 2; // padded rows, as plans may have

  Status run(bool prefill, const exec::StepInputs &in) override {
    const size_t B = in.lastRows.size(), T = in.tokens.size();
    const int64_t P = in.pagesPerSequence;
    if (steps++ == failAtStep)
      return Status::error("injected failure");
    if (in.positions.size() != T || in.tokenSeq.size() != T ||
        in.blockTable.size() != B * P)
      return Status::error("malformed step inputs");
    if (!prefill && T != B)
      return Status::error("a decode step feeds one token per sequence");
    std::set<int32_t> seen;
    for (int32_t page : in.blockTable) {
      if (page == exec::kUnusedPage)
        continue;
      if (page < 0 || page * pageSize_ >= static_cast<int64_t>(rows_.size()))
        return Status::error("page {} does not exist", page);
      if (!seen.insert(page).second)
        return Status::error("page {} belongs to two sequences", page);
    }
    auto slot = [&](int32_t seq, int32_t pos) -> int64_t {
      const int64_t index = pos / pageSize_;
      if (index >= P)
        return -1;
      const int32_t page = in.blockTable[seq * P + index];
      return page < 0 ? -1 : page * pageSize_ + pos % pageSize_;
    };
    // Like the plan: every token of the step is written, then attends.
    for (size_t t = 0; t < T; ++t) {
      const int64_t at = slot(in.tokenSeq[t], in.positions[t]);
      if (at < 0)
        return Status::error("token {} has no page for position {}", t,
                             in.positions[t]);
      rows_[at] = in.tokens[t];
    }
    logits_.assign(B * columns, 0.0f);
    for (size_t b = 0; b < B; ++b) {
      const int32_t last = in.lastRows[b];
      if (in.tokenSeq[last] != static_cast<int32_t>(b))
        return Status::error("last row of sequence {} is not its token", b);
      std::vector<int32_t> history;
      for (int32_t p = 0; p <= in.positions[last]; ++p) {
        const int64_t at = slot(static_cast<int32_t>(b), p);
        if (at < 0 || rows_[at] == kUnwritten)
          return Status::error("sequence {} reads position {}, never written",
                               b, p);
        history.push_back(rows_[at]);
      }
      logits_[b * columns + rule(history)] = 10.0f;
      logits_[b * columns + kVocab] = 100.0f; // padding: never sampled
    }
    return Status::success();
  }
  StatusOr<std::vector<float>> readLogits() override { return logits_; }
  bool samplesOnDevice() const override { return false; }
  int64_t countRows() const override { return 0; }
  StatusOr<std::vector<int32_t>>
  sampleTokens(const std::vector<sample::SamplingParams> &) override {
    return Status::error("no device sampler");
  }
  Status clearTokenCounts(int64_t) override { return Status::error("none"); }

private:
  int64_t pageSize_;
  std::vector<int32_t> rows_;
  std::vector<float> logits_;
};

} // namespace dsv3::serve::fake
