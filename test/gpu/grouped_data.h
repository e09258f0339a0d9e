// Routed FP8 operands for the grouped (expert) GEMM tests: T tokens routed
// top-k over E experts (routing.h), FP8 rows and experts with their block
// scales (gemm_data.h), on the host and the device, and the float64
// reference of any routed row.
#pragma once

#include "gemm_data.h"
#include "routing.h"

#include <string>
#include <vector>

namespace gpu_test {

/// gather: A holds one row per token and a_rows picks it (gate/up of the
/// routed experts); otherwise A is already in routed order (down).
template <int N, int K, int E> struct GroupedData {
  static constexpr int kBlocksK = (K + kScaleBlock - 1) / kScaleBlock;
  static constexpr int kBlocksN = (N + kScaleBlock - 1) / kScaleBlock;
  Routing routing;
  bool gather;
  int aRowCount;
  std::vector<__nv_fp8_e4m3> a, b;
  std::vector<float> aScales, bScales;
  DeviceBuffer<__nv_fp8_e4m3> da, db;
  DeviceBuffer<float> das, dbs;
  DeviceBuffer<int> drows, doffsets;
  GroupedData(int T, int topK, const std::vector<int> &candidates, bool gatherRows)
      : routing(routeTokens(T, topK, E, candidates)), gather(gatherRows),
        aRowCount(gatherRows ? T : routing.rows()),
        a(randomFp8(static_cast<size_t>(aRowCount) * K)),
        b(randomFp8(static_cast<size_t>(E) * N * K)),
        aScales(randomScales(static_cast<size_t>(aRowCount) * kBlocksK)),
        bScales(randomScales(static_cast<size_t>(E) * kBlocksN * kBlocksK)), da(a.size()),
        db(b.size()), das(aScales.size()), dbs(bScales.size()), drows(routing.rows()),
        doffsets(E + 1) {
    da.upload(a);
    db.upload(b);
    das.upload(aScales);
    dbs.upload(bScales);
    drows.upload(routing.rowToken);
    doffsets.upload(routing.expertOffsets);
  }
  int R() const { return routing.rows(); }
  const int *aRows() const { return gather ? drows.ptr : nullptr; }
  /// float64 rows `rows` of the product, each with the weight of expert
  /// `expertOf(expert owning the row)` (the owner itself by default).
  template <typename ExpertOf>
  std::vector<double> reference(const std::vector<int> &rows, ExpertOf expertOf) const {
    std::vector<double> ref(rows.size() * N);
    for (size_t i = 0; i < rows.size(); ++i) {
      int r = rows[i], e = expertOf(routing.expertOf(r)), source = gather ? routing.rowToken[r] : r;
      referenceScaledRow(&a[static_cast<size_t>(source) * K], &aScales[source * kBlocksK],
                         &b[static_cast<size_t>(e) * N * K],
                         &bScales[static_cast<size_t>(e) * kBlocksN * kBlocksK], N, K,
                         &ref[i * N]);
    }
    return ref;
  }
  std::vector<double> reference(const std::vector<int> &rows) const {
    return reference(rows, [](int e) { return e; });
  }
  std::string shape() const {
    return "E=" + std::to_string(E) + " " + std::to_string(N) + "x" + std::to_string(K) +
           " R=" + std::to_string(R()) + " used=" + std::to_string(routing.used()) +
           (gather ? " gather" : "");
  }
};

} // namespace gpu_test
