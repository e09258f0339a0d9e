// Routed rows for the grouped (expert) GEMM tests, as moe_align lays them
// out: each of T tokens picks topK distinct experts among `candidates`; the
// (expert, token) pairs sorted by expert (tokens ascending within one) give
// rowToken[r], the token of routed row r, and expertOffsets[0..E], where
// expert e's rows begin.
#pragma once

#include "harness.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace gpu_test {

struct Routing {
  std::vector<int> rowToken, expertOffsets;
  int rows() const { return static_cast<int>(rowToken.size()); }
  /// Experts with at least one row.
  int used() const {
    int n = 0;
    for (size_t e = 0; e + 1 < expertOffsets.size(); ++e)
      n += expertOffsets[e + 1] > expertOffsets[e];
    return n;
  }
  /// The expert owning routed row r.
  int expertOf(int r) const {
    return static_cast<int>(std::upper_bound(expertOffsets.begin(), expertOffsets.end(), r) -
                            expertOffsets.begin()) -
           1;
  }
};

inline Routing routeTokens(int T, int topK, int numExperts, std::vector<int> candidates) {
  std::vector<std::pair<int, int>> pairs; // (expert, token)
  for (int t = 0; t < T; ++t) {
    std::shuffle(candidates.begin(), candidates.end(), rng());
    for (int j = 0; j < topK; ++j)
      pairs.push_back({candidates[j], t});
  }
  std::sort(pairs.begin(), pairs.end());
  Routing routing;
  routing.expertOffsets.assign(numExperts + 1, 0);
  for (const auto &p : pairs) {
    routing.rowToken.push_back(p.second);
    routing.expertOffsets[p.first + 1] += 1;
  }
  for (int e = 0; e < numExperts; ++e)
    routing.expertOffsets[e + 1] += routing.expertOffsets[e];
  return routing;
}

/// Experts 0 .. numExperts - 1, every one a candidate.
inline std::vector<int> allExperts(int numExperts) {
  std::vector<int> experts(numExperts);
  for (int e = 0; e < numExperts; ++e)
    experts[e] = e;
  return experts;
}

} // namespace gpu_test
