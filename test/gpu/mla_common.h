// Shared by the MLA GPU tests (mla_test.cu, mla_decode_test.cu): the model
// shapes they run, a paged latent cache with shuffled pages, token batches,
// the float64 reference of absorbed attention and the error measures.
#pragma once

#include "harness.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

namespace mla_testing {

using namespace gpu_test;
using bf16 = __nv_bfloat16;

/// DeepSeek-V3: softmax scale 192^-0.5 times mscale^2 under YaRN (factor 40,
/// mscale_all_dim 1: mscale = 0.1 ln 40 + 1); its rope mscale ratio is 1.
struct DeepSeekV3Shape {
  static constexpr int HEADS = 128, NOPE = 128, ROPE = 64, V = 128, KV_LORA = 512, PAGE = 64;
  static constexpr const char *kName = "dsv3";
  static float softmaxScale() {
    double mscale = 0.1 * std::log(40.0) + 1.0;
    return static_cast<float>(mscale * mscale / std::sqrt(192.0));
  }
  static constexpr float kRopeScale = 1.0f;
};

/// A tiny model with a page smaller than the key tile and rope_scale != 1,
/// which must multiply both q and k.
struct TinyShape {
  static constexpr int HEADS = 4, NOPE = 32, ROPE = 16, V = 32, KV_LORA = 64, PAGE = 16;
  static constexpr const char *kName = "tiny";
  static float softmaxScale() { return static_cast<float>(1.0 / std::sqrt(48.0)); }
  static constexpr float kRopeScale = 1.25f;
};

/// Runs body(i) for i < n on all host cores (the float64 references of the
/// real shapes are billions of multiply-adds).
template <typename Body> void parallelFor(size_t n, Body body) {
  unsigned workers = std::max(1u, std::min<unsigned>(std::thread::hardware_concurrency(), 32));
  std::vector<std::thread> pool;
  for (unsigned w = 0; w < workers; ++w)
    pool.emplace_back([&, w] {
      for (size_t i = w; i < n; i += workers)
        body(i);
    });
  for (std::thread &thread : pool)
    thread.join();
}

/// A paged cache for a batch of sequences: each sequence's pages are drawn
/// from a shuffled pool, and every block-table entry past them points at a
/// spare page that the tests fill with NaN.
struct PagedLayout {
  int page = 0, maxPages = 0, numPages = 0, sparePage = 0;
  std::vector<int> blockTable; // [sequences, maxPages]
  long long slot(int sequence, int position) const {
    return static_cast<long long>(blockTable[sequence * maxPages + position / page]) * page +
           position % page;
  }
};

inline PagedLayout makePagedLayout(const std::vector<int> &capacities, int page) {
  PagedLayout layout;
  layout.page = page;
  int used = 0;
  for (int capacity : capacities) {
    int pages = (capacity + page - 1) / page;
    layout.maxPages = std::max(layout.maxPages, pages);
    used += pages;
  }
  layout.numPages = used + 3; // the spare page and two never referenced
  std::vector<int> pool(layout.numPages);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng());
  layout.sparePage = pool.back();
  layout.blockTable.assign(capacities.size() * layout.maxPages, layout.sparePage);
  int next = 0;
  for (size_t s = 0; s < capacities.size(); ++s)
    for (int p = 0; p < (capacities[s] + page - 1) / page; ++p)
      layout.blockTable[s * layout.maxPages + p] = pool[next++];
  return layout;
}

/// Tokens of a batch: sequence and position of each.
struct TokenBatch {
  std::vector<int> sequence, position;
  int size() const { return static_cast<int>(sequence.size()); }
};

/// Every position of every sequence, sequence by sequence (prefill).
inline TokenBatch prefillTokens(const std::vector<int> &lengths) {
  TokenBatch batch;
  for (size_t s = 0; s < lengths.size(); ++s)
    for (int p = 0; p < lengths[s]; ++p) {
      batch.sequence.push_back(static_cast<int>(s));
      batch.position.push_back(p);
    }
  return batch;
}

/// One token per sequence at its last position (decode).
inline TokenBatch decodeTokens(const std::vector<int> &lengths) {
  TokenBatch batch;
  for (size_t s = 0; s < lengths.size(); ++s) {
    batch.sequence.push_back(static_cast<int>(s));
    batch.position.push_back(lengths[s] - 1);
  }
  return batch;
}

/// Token indices checked against the reference: all when few, else the
/// first and last token of each sequence plus random ones.
inline std::vector<int> sampleTokens(const TokenBatch &batch, int wanted) {
  std::vector<int> picked;
  if (batch.size() <= wanted) {
    picked.resize(batch.size());
    std::iota(picked.begin(), picked.end(), 0);
    return picked;
  }
  for (int t = 0; t < batch.size(); ++t)
    if (t == 0 || t == batch.size() - 1 || batch.sequence[t] != batch.sequence[t - 1] ||
        batch.sequence[t] != batch.sequence[t + 1])
      picked.push_back(t);
  std::uniform_int_distribution<int> pick(0, batch.size() - 1);
  while (static_cast<int>(picked.size()) < wanted)
    picked.push_back(pick(rng()));
  std::sort(picked.begin(), picked.end());
  picked.erase(std::unique(picked.begin(), picked.end()), picked.end());
  return picked;
}

inline std::string lengthsName(const std::vector<int> &lengths) {
  std::string name = "{";
  for (size_t i = 0; i < lengths.size(); ++i)
    name += (i ? "," : "") + std::to_string(lengths[i]);
  return name + "}";
}

inline size_t countChangedFromPoison(const std::vector<bf16> &values,
                                     const std::vector<bool> &owned) {
  size_t changed = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    uint16_t raw;
    std::memcpy(&raw, &values[i], 2);
    if (!owned[i] && raw != 0xFFFF)
      ++changed;
  }
  return changed;
}

/// The largest per-token ||out - ref|| / ||ref|| over rows of `width` values:
/// the norm over a whole batch is dominated by short-context tokens (whose
/// output is close to a single cached row, nearly exact in bf16) and would
/// hide an error confined to the long contexts.
inline double worstTokenError(const std::vector<float> &out, const std::vector<double> &ref,
                              size_t width) {
  double worst = 0;
  for (size_t row = 0; row * width < ref.size(); ++row) {
    std::vector<float> outRow(out.begin() + row * width, out.begin() + (row + 1) * width);
    std::vector<double> refRow(ref.begin() + row * width, ref.begin() + (row + 1) * width);
    worst = std::max(worst, relativeError(outRow, refRow));
  }
  return worst;
}

/// A check's shape: model, activation type, case.
template <class S, typename T> std::string shapeName(const std::string &rest) {
  return std::string(S::kName) + " " + typeName<T>() + " " + rest;
}

/// Float64 absorbed attention of token t, head h over a host copy of the cache.
template <class S>
void referenceAttention(const std::vector<float> &qLat, const std::vector<float> &q,
                        const std::vector<float> &cache, const PagedLayout &layout, int t,
                        int sequence, int position, int h, double *out) {
  constexpr int kRow = S::KV_LORA + S::ROPE;
  const float *queryLatent = &qLat[(static_cast<size_t>(t) * S::HEADS + h) * S::KV_LORA];
  const float *queryRope = &q[static_cast<size_t>(t) * S::HEADS * (S::NOPE + S::ROPE) +
                              h * (S::NOPE + S::ROPE) + S::NOPE];
  std::vector<double> scores(position + 1);
  double maxScore = -INFINITY;
  for (int j = 0; j <= position; ++j) {
    const float *key = &cache[static_cast<size_t>(layout.slot(sequence, j)) * kRow];
    double dot = 0;
    for (int c = 0; c < S::KV_LORA; ++c)
      dot += static_cast<double>(queryLatent[c]) * key[c];
    for (int r = 0; r < S::ROPE; ++r)
      dot += static_cast<double>(queryRope[r]) * key[S::KV_LORA + r];
    scores[j] = dot * static_cast<double>(S::softmaxScale());
    maxScore = std::max(maxScore, scores[j]);
  }
  double denominator = 0;
  for (double &s : scores) {
    s = std::exp(s - maxScore);
    denominator += s;
  }
  std::fill(out, out + S::KV_LORA, 0.0);
  for (int j = 0; j <= position; ++j) {
    const float *key = &cache[static_cast<size_t>(layout.slot(sequence, j)) * kRow];
    double weight = scores[j] / denominator;
    for (int c = 0; c < S::KV_LORA; ++c)
      out[c] += weight * key[c];
  }
}

} // namespace mla_testing
