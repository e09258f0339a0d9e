// GPU tests of targets/cuda/kernels/moe.cuh: moe_route (DeepSeek-V3, V2,
// V2-Lite and a tiny router) against a float64 reference of the Hugging Face
// semantics, moe_align (a permutation consistent with the routing), and
// moe_combine against a float64 weighted sum, with float expert/shared outputs
// and a float result (what dsv3c instantiates: the expert GEMMs write fp32 and
// the sum joins the fp32 residual stream; random fp32 inputs, all 24 mantissa
// bits) and all-bf16 (the template's default).
#include "harness.h"
#include "targets/cuda/kernels/moe.cuh"

#include <algorithm>
#include <numeric>
#include <type_traits>

using namespace gpu_test;

namespace {


// ---------------------------------------------------------------- moe_route

/// The reference router of one token, in float64 from the exact fp32 inputs.
struct RouteReference {
  std::vector<double> score;  // s, the weights' source
  std::vector<double> choice; // what the picks are ranked by
  std::vector<int> ids;       // the TOPK picks, sorted ascending
  bool nearTie = false;       // a selection boundary closer than fp32 can resolve
  double tieWidth = 0;        // choice differences below this are fp32 noise
};

template <int E, int TOPK, int GROUPS, int TOPK_GROUPS, int METHOD, int SCORE>
RouteReference routeReference(const float *logits, const float *bias) {
  RouteReference ref;
  ref.score.resize(E);
  ref.choice.resize(E);
  if (SCORE == dsv3k::kScoreSigmoid) {
    for (int e = 0; e < E; ++e)
      ref.score[e] = 1.0 / (1.0 + std::exp(-static_cast<double>(logits[e])));
  } else {
    double rowMax = *std::max_element(logits, logits + E), sum = 0;
    for (int e = 0; e < E; ++e)
      sum += ref.score[e] = std::exp(logits[e] - rowMax);
    for (int e = 0; e < E; ++e)
      ref.score[e] /= sum;
  }
  double magnitude = 0;
  for (int e = 0; e < E; ++e) {
    ref.choice[e] = ref.score[e] + (METHOD == dsv3k::kRouteNoauxTc ? bias[e] : 0.0);
    magnitude = std::max(magnitude, std::fabs(ref.choice[e]));
  }
  // fp32 evaluation of sigmoid / softmax / bias-add is good to ~1e-7 of the
  // values' magnitude; a boundary closer than 4e-6 of it may legitimately
  // fall either way in the kernel, so such tokens are only checked for
  // validity, not for the exact set.
  const double tieWidth = ref.tieWidth = 4e-6 * magnitude;

  std::vector<bool> kept(E, true);
  constexpr bool kGrouped = METHOD != dsv3k::kRouteGreedy && GROUPS > 1 && TOPK_GROUPS < GROUPS;
  if (kGrouped) {
    constexpr int kGroupSize = E / GROUPS;
    std::vector<std::pair<double, int>> groups;
    for (int g = 0; g < GROUPS; ++g) {
      std::vector<double> members(ref.choice.begin() + g * kGroupSize,
                                  ref.choice.begin() + (g + 1) * kGroupSize);
      std::sort(members.rbegin(), members.rend());
      double groupScore = METHOD == dsv3k::kRouteNoauxTc ? members[0] + members[1] : members[0];
      groups.push_back({groupScore, g});
    }
    std::sort(groups.rbegin(), groups.rend());
    if (groups[TOPK_GROUPS - 1].first - groups[TOPK_GROUPS].first < 2 * tieWidth)
      ref.nearTie = true;
    for (int g = TOPK_GROUPS; g < GROUPS; ++g)
      for (int i = 0; i < kGroupSize; ++i)
        kept[groups[g].second * kGroupSize + i] = false;
  }
  std::vector<std::pair<double, int>> candidates;
  for (int e = 0; e < E; ++e)
    if (kept[e])
      candidates.push_back({ref.choice[e], e});
  std::sort(candidates.rbegin(), candidates.rend());
  if (static_cast<int>(candidates.size()) > TOPK &&
      candidates[TOPK - 1].first - candidates[TOPK].first < tieWidth)
    ref.nearTie = true;
  for (int k = 0; k < TOPK; ++k)
    ref.ids.push_back(candidates[k].second);
  std::sort(ref.ids.begin(), ref.ids.end());
  return ref;
}

template <int E, int TOPK, int GROUPS, int TOPK_GROUPS, int METHOD, int SCORE, bool NORMALIZE>
void testRoute(const char *model, int T, float routeScale) {
  // Logits spread over [-4, 4] (as a trained router's are, roughly) so that
  // near-ties between the k-th and (k+1)-th expert are rare; the bias moves
  // choices by up to ±0.5 so that it changes which experts win.
  std::vector<float> logits = randomFloats(static_cast<size_t>(T) * E, -4.0f, 4.0f);
  std::vector<float> bias = randomFloats(E, -0.5f, 0.5f);
  DeviceBuffer<float> dLogits(logits.size()), dBias(E), dWeights(static_cast<size_t>(T) * TOPK);
  DeviceBuffer<int> dIds(static_cast<size_t>(T) * TOPK);
  dLogits.upload(logits);
  dBias.upload(bias);
  dIds.poison();
  dWeights.poison();
  dsv3k::moe_route<E, TOPK, GROUPS, TOPK_GROUPS, METHOD, SCORE, NORMALIZE>
      <<<dsv3k::ceilDiv(T, 4), 128>>>(dLogits.ptr,
                                      METHOD == dsv3k::kRouteNoauxTc ? dBias.ptr : nullptr,
                                      dIds.ptr, dWeights.ptr, T, routeScale);
  CHECK_LAUNCH();
  std::vector<int> ids = dIds.download();
  std::vector<float> weights = dWeights.download();

  // Ids: every token's set equals the reference's (near-tie tokens: only
  // distinct and in range), and the picks come in descending choice order.
  // Weights: the reference s of the experts the kernel picked, normalized over
  // them and scaled, so one legitimate near-tie swap cannot hide a bad weight.
  int wrongTokens = 0, nearTies = 0;
  std::vector<double> refWeights(weights.size());
  for (int t = 0; t < T; ++t) {
    RouteReference ref = routeReference<E, TOPK, GROUPS, TOPK_GROUPS, METHOD, SCORE>(
        &logits[static_cast<size_t>(t) * E], bias.data());
    const int *mine = &ids[static_cast<size_t>(t) * TOPK];
    std::vector<int> sorted(mine, mine + TOPK);
    std::sort(sorted.begin(), sorted.end());
    bool valid = std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end() &&
                 sorted.front() >= 0 && sorted.back() < E;
    nearTies += ref.nearTie;
    bool ok = valid && (ref.nearTie || sorted == ref.ids);
    for (int k = 0; ok && !ref.nearTie && k + 1 < TOPK; ++k)
      ok = ref.choice[mine[k]] >= ref.choice[mine[k + 1]] - ref.tieWidth;
    wrongTokens += !ok;
    double total = 0;
    for (int k = 0; k < TOPK; ++k)
      total += valid ? ref.score[mine[k]] : 0;
    for (int k = 0; k < TOPK; ++k) {
      double w = valid ? ref.score[mine[k]] : 0;
      if (NORMALIZE)
        w /= total + 1e-20;
      refWeights[static_cast<size_t>(t) * TOPK + k] = w * routeScale;
    }
  }
  std::string shape = std::string(model) + " T=" + std::to_string(T) +
                      " near-ties=" + std::to_string(nearTies);
  // Exact: any token whose picks differ from the reference is a failure.
  report("moe_route ids (tokens off)", shape, wrongTokens, 0);
  // fp32 sigmoid/softmax, one sum and one division: ~1e-7 relative.
  report("moe_route weights", shape, relativeError(weights, refWeights), 1e-5);
  if (T >= 4096)
    std::printf("  time moe_route %s: %.1f us\n", shape.c_str(), medianMicros([&] {
                  dsv3k::moe_route<E, TOPK, GROUPS, TOPK_GROUPS, METHOD, SCORE, NORMALIZE>
                      <<<dsv3k::ceilDiv(T, 4), 128>>>(dLogits.ptr, dBias.ptr, dIds.ptr,
                                                      dWeights.ptr, T, routeScale);
                }));
}

// ---------------------------------------------------------------- moe_align

/// Random routing with TOPK distinct experts per token, drawn from a skewed
/// (Zipf-like) popularity so that some experts are hot and some stay empty.
std::vector<int> skewedRouting(int T, int E, int TOPK) {
  std::vector<double> popularity(E);
  std::vector<int> rank(E);
  std::iota(rank.begin(), rank.end(), 0);
  std::shuffle(rank.begin(), rank.end(), rng());
  for (int e = 0; e < E; ++e)
    popularity[e] = 1.0 / (1 + rank[e]);
  std::discrete_distribution<int> pick(popularity.begin(), popularity.end());
  std::vector<int> ids(static_cast<size_t>(T) * TOPK);
  for (int t = 0; t < T; ++t)
    for (int k = 0; k < TOPK; ++k) {
      int e;
      do
        e = pick(rng());
      while (std::find(&ids[static_cast<size_t>(t) * TOPK], &ids[static_cast<size_t>(t) * TOPK + k],
                       e) != &ids[static_cast<size_t>(t) * TOPK + k]);
      ids[static_cast<size_t>(t) * TOPK + k] = e;
    }
  return ids;
}

template <int E, int TOPK> void testAlign(int T) {
  const int R = T * TOPK;
  std::vector<int> ids = skewedRouting(T, E, TOPK);
  DeviceBuffer<int> dIds(R), dOffsets(E + 1), dRowTokens(R), dEntryToRow(R);
  dIds.upload(ids);
  dOffsets.poison();
  dRowTokens.poison();
  dEntryToRow.poison();
  dsv3k::moe_align<E, TOPK><<<1, dsv3k::kMoeAlignThreads>>>(dIds.ptr, dOffsets.ptr, dRowTokens.ptr,
                                                            dEntryToRow.ptr, T);
  CHECK_LAUNCH();
  std::vector<int> offsets = dOffsets.download(), rowTokens = dRowTokens.download(),
                   entryToRow = dEntryToRow.download();

  // Every violated property counts one: offsets are the exclusive prefix sums
  // of the true per-expert counts; entry_to_row sends each entry to a distinct
  // row inside its expert's range, whose row_tokens is the entry's token; and
  // (the documented stability) tokens ascend within an expert.
  long long violations = 0;
  std::vector<int> counts(E, 0);
  for (int id : ids)
    ++counts[id];
  int running = 0;
  for (int e = 0; e < E; ++e) {
    violations += offsets[e] != running;
    running += counts[e];
  }
  violations += offsets[E] != R;
  std::vector<int> seen(R, 0);
  for (int entry = 0; entry < R; ++entry) {
    int row = entryToRow[entry], expert = ids[entry];
    if (row < 0 || row >= R) {
      ++violations;
      continue;
    }
    ++seen[row];
    violations += row < offsets[expert] || row >= offsets[expert + 1];
    violations += rowTokens[row] != entry / TOPK;
    violations += row > offsets[expert] && rowTokens[row - 1] >= rowTokens[row];
  }
  for (int row = 0; row < R; ++row)
    violations += seen[row] != 1;
  report("moe_align (violations)",
         "E=" + std::to_string(E) + " TOPK=" + std::to_string(TOPK) + " T=" + std::to_string(T),
         static_cast<double>(violations), 0);
  if (T >= 4096)
    std::printf("  time moe_align E=%d TOPK=%d T=%d: %.1f us\n", E, TOPK, T, medianMicros([&] {
                  dsv3k::moe_align<E, TOPK><<<1, dsv3k::kMoeAlignThreads>>>(
                      dIds.ptr, dOffsets.ptr, dRowTokens.ptr, dEntryToRow.ptr, T);
                }));
}

// -------------------------------------------------------------- moe_combine

template <int H, int TOPK, typename InT, typename OutT>
void testCombine(int T, bool withShared, bool outAliasesShared) {
  const size_t R = static_cast<size_t>(T) * TOPK;
  RandomData<InT> expertOut(R * H, -1.0f, 1.0f);
  RandomData<InT> sharedOut(static_cast<size_t>(T) * H, -1.0f, 1.0f);
  // Routing weights as moe_route gives them: positive, summing to ~2.5.
  std::vector<float> weights = randomFloats(R, 0.05f, 0.6f);
  std::vector<int> entryToRow(R);
  std::iota(entryToRow.begin(), entryToRow.end(), 0);
  std::shuffle(entryToRow.begin(), entryToRow.end(), rng());

  DeviceBuffer<InT> dExpertOut(R * H), dShared(static_cast<size_t>(T) * H);
  DeviceBuffer<OutT> dOut(static_cast<size_t>(T) * H);
  DeviceBuffer<int> dEntryToRow(R);
  DeviceBuffer<float> dWeights(R);
  dExpertOut.upload(expertOut.stored);
  dShared.upload(sharedOut.stored);
  dEntryToRow.upload(entryToRow);
  dWeights.upload(weights);
  // out may alias shared_out only when both have one type.
  OutT *out = dOut.ptr;
  if constexpr (std::is_same_v<InT, OutT>) {
    if (outAliasesShared)
      out = dShared.ptr;
  } else if (outAliasesShared) {
    std::fprintf(stderr, "moe_combine: out cannot alias shared_out of another type\n");
    std::exit(2);
  }
  if (!outAliasesShared)
    dOut.poison();
  dim3 grid(T, dsv3k::ceilDiv(H, dsv3k::kMoeCombineColumns));
  dsv3k::moe_combine<H, TOPK, InT, OutT><<<grid, dsv3k::kMoeCombineThreads>>>(
      dExpertOut.ptr, dEntryToRow.ptr, dWeights.ptr, withShared ? dShared.ptr : nullptr, out, T);
  CHECK_LAUNCH();
  std::vector<float> got;
  if constexpr (std::is_same_v<InT, OutT>)
    got = valuesOf(outAliasesShared ? dShared.download() : dOut.download());
  else
    got = valuesOf(dOut.download());

  std::vector<double> ref(static_cast<size_t>(T) * H);
  for (int t = 0; t < T; ++t)
    for (int k = 0; k < TOPK; ++k) {
      const float *src = &expertOut.values[static_cast<size_t>(entryToRow[t * TOPK + k]) * H];
      double w = weights[t * TOPK + k];
      for (int h = 0; h < H; ++h)
        ref[static_cast<size_t>(t) * H + h] += w * src[h];
    }
  if (withShared)
    for (size_t i = 0; i < ref.size(); ++i)
      ref[i] += sharedOut.values[i];
  std::string shape = "H=" + std::to_string(H) + " TOPK=" + std::to_string(TOPK) +
                      " T=" + std::to_string(T) + " " + typeName<InT>() + "->" +
                      typeName<OutT>() +
                      (withShared ? (outAliasesShared ? " +shared (out=shared)" : " +shared")
                                  : " no shared");
  // bf16 out: fp32 accumulation rounded once to bf16, the rounding alone
  // ~1.6e-3 rms relative (half an ulp of 2^-7, uniform); 4e-3 leaves room.
  // float out: nothing but the fp32 sum of at most 9 terms (each fma rounds
  // once, relative 2^-24 of the running sum): a few 1e-8 as a norm ratio,
  // tolerance 1e-6; an input or the result passing through bf16 would be
  // ~1e-3, a dropped pick ~0.3.
  double tolerance = std::is_same_v<OutT, float> ? 1e-6 : 4e-3;
  report("moe_combine", shape, relativeError(got, ref), tolerance);
  if (T >= 1024) {
    double micros = medianMicros([&] {
      dsv3k::moe_combine<H, TOPK, InT, OutT><<<grid, dsv3k::kMoeCombineThreads>>>(
          dExpertOut.ptr, dEntryToRow.ptr, dWeights.ptr, withShared ? dShared.ptr : nullptr,
          dOut.ptr, T);
    });
    double bytes = static_cast<double>(H) *
                   (sizeof(InT) * (R + (withShared ? T : 0)) + sizeof(OutT) * T);
    std::printf("  time moe_combine %s: %.1f us (%.0f GB/s)\n", shape.c_str(), micros,
                bytes / micros / 1e3);
  }
}

} // namespace

int main() {
  for (int T : {1, 100, 4096}) {
    // DeepSeek-V3: 256 experts, top-8, 8 groups keep 4, noaux_tc, sigmoid,
    // normalized, routed_scaling_factor 2.5.
    testRoute<256, 8, 8, 4, dsv3k::kRouteNoauxTc, dsv3k::kScoreSigmoid, true>("V3 E256 k8 g8/4",
                                                                              T, 2.5f);
    // DeepSeek-V2: 160 experts, top-6, 8 groups keep 3, group_limited_greedy,
    // softmax, not normalized, scale 16.
    testRoute<160, 6, 8, 3, dsv3k::kRouteGroupLimitedGreedy, dsv3k::kScoreSoftmax, false>(
        "V2 E160 k6 g8/3", T, 16.0f);
    // DeepSeek-V2-Lite: 64 experts, top-6, greedy, softmax, scale 1.
    testRoute<64, 6, 1, 1, dsv3k::kRouteGreedy, dsv3k::kScoreSoftmax, false>("V2-Lite E64 k6", T,
                                                                             1.0f);
    // Tiny: 16 experts, top-4, 4 groups of 4 keep 2, noaux_tc, sigmoid.
    testRoute<16, 4, 4, 2, dsv3k::kRouteNoauxTc, dsv3k::kScoreSigmoid, true>("tiny E16 k4 g4/2",
                                                                             T, 1.5f);
  }
  // Odd shapes: E not a multiple of 32 with one group (noaux_tc degenerates to
  // greedy on s + bias), and a softmax noaux variant.
  testRoute<72, 6, 1, 1, dsv3k::kRouteNoauxTc, dsv3k::kScoreSigmoid, true>("E72 k6 g1 noaux", 333,
                                                                           1.0f);
  testRoute<64, 8, 8, 3, dsv3k::kRouteNoauxTc, dsv3k::kScoreSoftmax, false>("E64 k8 g8/3 softmax",
                                                                            257, 2.0f);

  for (int T : {1, 100, 16384})
    testAlign<256, 8>(T);
  testAlign<160, 6>(100);
  testAlign<64, 6>(4097);
  testAlign<16, 4>(3);

  // float in and out, as dsv3c instantiates it; out may alias shared_out.
  testCombine<7168, 8, float, float>(1, true, false);
  testCombine<7168, 8, float, float>(77, true, false);
  testCombine<7168, 8, float, float>(77, true, true);
  testCombine<7168, 8, float, float>(1024, false, false);
  testCombine<7168, 8, float, float>(1024, true, false);
  testCombine<256, 8, float, float>(1, false, false);
  testCombine<256, 8, float, float>(333, true, false);
  testCombine<5120, 6, float, float>(50, true, false);
  // all bf16, the template's default.
  testCombine<7168, 8, __nv_bfloat16, __nv_bfloat16>(1, true, false);
  testCombine<7168, 8, __nv_bfloat16, __nv_bfloat16>(77, true, false);
  testCombine<7168, 8, __nv_bfloat16, __nv_bfloat16>(77, true, true);
  testCombine<7168, 8, __nv_bfloat16, __nv_bfloat16>(1024, false, false);
  testCombine<256, 8, __nv_bfloat16, __nv_bfloat16>(1, false, false);
  testCombine<256, 8, __nv_bfloat16, __nv_bfloat16>(333, true, false);
  testCombine<5120, 6, __nv_bfloat16, __nv_bfloat16>(50, true, false);
  return finish("moe");
}
