// GPU tests of mla.cuh: mla_rope_q, mla_kv_write and mla_attention each
// against a float64 CPU reference on fresh random inputs, and the whole
// absorbed pipeline (with mla_absorb.cuh's products, which
// mla_absorb_test.cu checks on their own) against plain
// (non-absorbed) MLA computed in float64: k_nope = W_UK c, v = W_UV c per head,
// standard causal softmax attention; the pipeline's decode step also runs
// through mla_decode.cuh's split attention, as dsv3c runs decode steps
// (mla_decode_test.cu checks that kernel on its own). Shapes: DeepSeek-V3
// (128 heads, nope 128, rope 64, v 128, kv_lora 512, page 64) and a tiny
// model (4 heads, 32, 16, 32, 64, page 16). Attention runs on a batch of 4
// sequences of mixed lengths whose pages are shuffled (never contiguous):
// prefill (1, 17, 300, 1000: every token attends causally) and decode (one
// new token per sequence over 4096, 16384, 513 and 1 cached positions).
// Block-table entries past a sequence's pages point at a page of NaNs, so a
// read past the causal limit fails.
//
// Every test runs twice over the activations' element type: float, what dsv3c
// instantiates (q and kv_a come from fp32 GEMM outputs; q_lat and out_lat stay
// fp32; random fp32 inputs use all 24 mantissa bits), and bf16, the templates'
// default. kv_b, the norm weight and the cache are bf16 in both, as is
// the absorbed output (o_proj's input).
//
// Tolerances (norm ratios ||out - ref|| / ||ref||):
//  - float outputs: fp32 arithmetic only. Rope (kFp32Rope = 1e-6): each value
//    is x0 c - x1 s with c, s rounded to fp32, a few roundings of 2^-24 of
//    |x|, about 1e-7. Sums (kFp32Sum = 2e-5): fp32 sums of n terms drift like
//    sqrt(n) 2^-24 relative, about 1e-6 for the 576-term scores, up to ~8e-6 over attention's 16384-key context. One
//    bf16 rounding anywhere on the way (>= 1e-3 relative at that point, a few
//    1e-4 after averaging) fails.
//  - One bf16 rounding of an fp32 result (bf16 rope and attention, the
//    cache's rope half): half an ulp of
//    8 significant bits, uniform, is about 1.7e-3; fp32 accumulation adds
//    < 1e-5. kBf16Output = 3e-3 passes that and fails a missing or misplaced
//    term (one of 128 terms dropped is ~9%; one key of 1000 missed is ~3%).
//  - The cache's latent half is rms_norm rounded once to bf16 (as norm_test
//    checks it): the same 3e-3, and every value must be the float64 norm
//    rounded to nearest even except next to a rounding midpoint (rounding
//    misses: at most 1e-3 of them, see harness.h).
//  - End to end: the plain float64 reference caches c and k_pe rounded to
//    bf16 as both forms store them. The absorptions round their inputs (q's
//    nope half, out_lat) for the tensor cores (all but the output's stream
//    kernel, up to 4 tokens) and the output; bf16 activations also round
//    q_pe, q_lat and out_lat on the way. Score errors move the softmax
//    weights: a few roundings of 1.7e-3 (about 3e-3 measured on an H100),
//    kPipelineBf16 = 1e-2. A wrong head, rope pairing, scale or page is off
//    by 1e-1 or more.
//  - Attention and the pipeline are also checked token by token (the worst
//    token's ratio), since short-context tokens dominate a batch-wide norm.
//  - Untouched regions (q's nope half, cache rows no token owns) must not
//    change at all: tolerance 0 on a count of changed values.
#include "mla_common.h"

#include "targets/cuda/kernels/mla.cuh"
#include "targets/cuda/kernels/mla_absorb.cuh"
#include "targets/cuda/kernels/mla_decode.cuh"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

using namespace gpu_test;
using namespace mla_testing;
using dsv3k::bf16;

namespace {

constexpr double kBf16Output = 3e-3;
constexpr double kFp32Rope = 1e-6;
constexpr double kFp32Sum = 2e-5;
constexpr double kPipelineBf16 = 1e-2;
constexpr double kExact = 0.0;
constexpr float kEps = 1e-6f;

/// The tolerance of an output of type T: `fp32` for float, one bf16
/// rounding for bf16.
template <typename T> double outputTolerance(double fp32) {
  return std::is_same_v<T, float> ? fp32 : kBf16Output;
}

/// DeepSeek-V3's YaRN frequencies (base 10000, factor 40, original context
/// 4096, beta_fast 32, beta_slow 1), as the compiler will pass them.
std::vector<float> yarnInverseFrequencies(int rope) {
  const double base = 10000, factor = 40, original = 4096, betaFast = 32, betaSlow = 1;
  auto correctionDim = [&](double rotations) {
    return rope * std::log(original / (rotations * 2 * 3.14159265358979323846)) / (2 * std::log(base));
  };
  double low = std::max(0.0, std::floor(correctionDim(betaFast)));
  double high = std::min<double>(rope - 1, std::ceil(correctionDim(betaSlow)));
  if (low == high)
    high += 0.001;
  std::vector<float> invFreq(rope / 2);
  for (int i = 0; i < rope / 2; ++i) {
    float extrapolated = static_cast<float>(1.0 / std::pow(base, 2.0 * i / rope));
    float interpolated = extrapolated / static_cast<float>(factor);
    double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    float keepExtrapolated = static_cast<float>(1.0 - ramp);
    invFreq[i] = interpolated * (1 - keepExtrapolated) + extrapolated * keepExtrapolated;
  }
  return invFreq;
}

/// Float64 rope of one ROPE-wide vector of interleaved pairs; the angle is the
/// fp32 product the model defines, cos and sin exact.
void referenceRope(const float *x, int rope, int position, const std::vector<float> &invFreq,
                   float ropeScale, double *out) {
  for (int i = 0; i < rope / 2; ++i) {
    float angle = static_cast<float>(position) * invFreq[i];
    double c = std::cos(static_cast<double>(angle)) * ropeScale;
    double s = std::sin(static_cast<double>(angle)) * ropeScale;
    double x0 = x[2 * i], x1 = x[2 * i + 1];
    out[2 * i] = x0 * c - x1 * s;
    out[2 * i + 1] = x0 * s + x1 * c;
  }
}

/// RMSNorm of one row, w * (x * rsqrt(mean(x^2) + eps)), in float64 and not
/// rounded (the kernel rounds it once to bf16).
void referenceNorm(const float *x, const float *w, int n, double *y) {
  double sumSquares = 0;
  for (int i = 0; i < n; ++i)
    sumSquares += static_cast<double>(x[i]) * x[i];
  double inverseRms = 1.0 / std::sqrt(sumSquares / n + kEps);
  for (int i = 0; i < n; ++i)
    y[i] = static_cast<double>(w[i]) * (x[i] * inverseRms);
}

constexpr int attentionHeadsPerBlock(int heads) {
  // mla_attention's default HEADS_PER_BLOCK, as its comment documents.
  return heads % 8 == 0 ? 8 : heads % 4 == 0 ? 4 : heads % 2 == 0 ? 2 : 1;
}

// ---- launchers (the geometry each kernel's comment states) ----------------

template <class S, typename QT>
void launchRopeQ(QT *q, const int *positions, const float *invFreq, int T) {
  dsv3k::mla_rope_q<S::HEADS, S::NOPE, S::ROPE, QT>
      <<<dim3(T, dsv3k::ceilDiv(S::HEADS, dsv3k::mla_detail::kRopeHeadsPerBlock)), 128>>>(
          q, positions, invFreq, S::kRopeScale, T);
  CHECK_LAUNCH();
}

/// mla_absorb.cuh's tensor-core query absorption with BM-token tiles over
/// CB column blocks, STAGES deep; false (and nothing launched) where the
/// shape does not fit the tile.
template <class S, int BM, int CB, int STAGES, typename QT, typename OutT>
bool launchQAbsorbTile(const QT *q, const bf16 *kvB, OutT *qLat, int T) {
  namespace absorb = dsv3k::mla_absorb_detail;
  if constexpr (!absorb::mmaTileFits(BM, CB, S::KV_LORA)) {
    return false;
  } else {
    constexpr int kShared =
        absorb::mmaSharedBytes(BM, S::KV_LORA / CB, S::NOPE, STAGES, sizeof(QT), false);
    auto kernel = dsv3k::mla_q_absorb_mma<S::HEADS, S::NOPE, S::ROPE, S::V, S::KV_LORA, QT, OutT,
                                          BM, CB, STAGES>;
    CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kShared));
    kernel<<<dim3(CB, dsv3k::ceilDiv(T, BM), S::HEADS), 256, kShared>>>(q, kvB, qLat, T);
    CHECK_LAUNCH();
    return true;
  }
}

/// As the code generator on an H100 (KernelTuning's absorb* bounds): 16-token
/// tiles over 4 column blocks up to 16 tokens, 64-token tiles over 4 up to
/// 1024, 128-token tiles above; a tile the shape does not fit passes its
/// tokens on to the next.
template <class S, typename QT, typename OutT>
void launchQAbsorb(const QT *q, const bf16 *kvB, OutT *qLat, int T) {
  if (T <= 16 && launchQAbsorbTile<S, 16, 4, 4>(q, kvB, qLat, T))
    return;
  if (T <= 1024 && launchQAbsorbTile<S, 64, 4, 3>(q, kvB, qLat, T))
    return;
  launchQAbsorbTile<S, 128, 1, 3>(q, kvB, qLat, T);
}

template <class S, typename InT>
void launchKvWrite(const InT *kvA, const bf16 *normW, const int *positions, const int *tokenSeq,
                   const int *blockTable, int maxPages, const float *invFreq, bf16 *cache, int T) {
  dsv3k::mla_kv_write<S::KV_LORA, S::ROPE, S::PAGE, InT><<<T, dsv3k::mla_detail::kKvWriteThreads>>>(
      kvA, normW, positions, tokenSeq, blockTable, maxPages, invFreq, S::kRopeScale, cache, T, kEps);
  CHECK_LAUNCH();
}

/// G: heads per block (mla_attention's HEADS_PER_BLOCK); 0 for its default.
template <class S, int G = 0, typename QT, typename OutT>
void launchAttention(const QT *qLat, const QT *q, const bf16 *cache, const int *blockTable,
                     int maxPages, const int *tokenSeq, const int *positions, OutT *outLat, int T) {
  constexpr int kHeadsPerBlock = G > 0 ? G : attentionHeadsPerBlock(S::HEADS);
  dim3 grid(T, S::HEADS / kHeadsPerBlock, 1);
  dsv3k::mla_attention<S::HEADS, S::NOPE, S::ROPE, S::KV_LORA, S::PAGE, QT, OutT, kHeadsPerBlock>
      <<<grid, 256>>>(qLat, q, cache, blockTable, maxPages, tokenSeq, positions, outLat, T,
                      S::softmaxScale());
  CHECK_LAUNCH();
}

/// The output absorption's tensor-core tiles, as launchQAbsorbTile.
template <class S, int BM, int CB, int STAGES, typename InT>
bool launchOutAbsorbTile(const InT *outLat, const bf16 *kvB, bf16 *out, int T) {
  namespace absorb = dsv3k::mla_absorb_detail;
  if constexpr (!absorb::mmaTileFits(BM, CB, S::V)) {
    return false;
  } else {
    constexpr int kShared =
        absorb::mmaSharedBytes(BM, S::V / CB, S::KV_LORA, STAGES, sizeof(InT), true);
    auto kernel =
        dsv3k::mla_out_absorb_mma<S::HEADS, S::NOPE, S::V, S::KV_LORA, InT, BM, CB, STAGES>;
    CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kShared));
    kernel<<<dim3(CB, dsv3k::ceilDiv(T, BM), S::HEADS), 256, kShared>>>(outLat, kvB, out, T);
    CHECK_LAUNCH();
    return true;
  }
}

/// As the code generator on an H100: the fp32 stream kernel up to 4 tokens,
/// 16-token tiles 8 stages deep up to 16, 128-token tiles above.
template <class S, typename InT>
void launchOutAbsorb(const InT *outLat, const bf16 *kvB, bf16 *out, int T) {
  if (T <= 4) {
    dsv3k::mla_out_absorb_stream<S::HEADS, S::NOPE, S::V, S::KV_LORA, InT>
        <<<dim3(S::V / dsv3k::mla_absorb_detail::kStreamRows, S::HEADS, dsv3k::ceilDiv(T, 16)),
           128>>>(outLat, kvB, out, T);
    CHECK_LAUNCH();
    return;
  }
  if (T <= 16 && launchOutAbsorbTile<S, 16, 1, 8>(outLat, kvB, out, T))
    return;
  launchOutAbsorbTile<S, 128, 1, 3>(outLat, kvB, out, T);
}

/// mla_decode_attention over 66 blocks of 64 heads, mla_decode_combine and
/// mla_out_absorb (mla_decode_test.cu checks the attention on its own);
/// outLat, out and the partials are poisoned first.
template <class S, typename QT>
void launchSplitDecode(const QT *qLat, const QT *q, const bf16 *cache, const int *blockTable,
                       int maxPages, const int *tokenSeq, const int *positions, QT *outLat,
                       bf16 *out, const bf16 *kvB, int T) {
  constexpr int kHeads = 64, kBlocks = 66;
  constexpr int kShared = dsv3k::mla_decode_shared_bytes<kHeads, S::KV_LORA, S::ROPE>();
  auto kernel =
      dsv3k::mla_decode_attention<S::HEADS, S::NOPE, S::ROPE, S::KV_LORA, S::PAGE, QT, QT, kHeads>;
  CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kShared));
  DeviceBuffer<float> partials(2ull * kBlocks * S::HEADS * (S::KV_LORA + 1));
  partials.poison();
  CHECK_CUDA(cudaMemset(outLat, 0xFF, sizeof(QT) * T * S::HEADS * S::KV_LORA));
  CHECK_CUDA(cudaMemset(out, 0xFF, sizeof(bf16) * T * S::HEADS * S::V));
  kernel<<<dim3(kBlocks, dsv3k::ceilDiv(S::HEADS, kHeads), 1), 256, kShared>>>(
      qLat, q, cache, blockTable, maxPages, tokenSeq, positions, outLat, T, S::softmaxScale(),
      partials.ptr, 1);
  CHECK_LAUNCH();
  dsv3k::mla_decode_combine<S::HEADS, S::KV_LORA, QT>
      <<<dim3(T, dsv3k::ceilDiv(S::HEADS * S::KV_LORA, 1024), 1), 256>>>(partials.ptr, kBlocks, positions, outLat, T);
  CHECK_LAUNCH();
  launchOutAbsorb<S>(outLat, kvB, out, T);
}

// ---- single kernels ---------------------------------------------------------

template <class S, typename Act> void testRopeQ(int T) {
  constexpr int kHeadWidth = S::NOPE + S::ROPE, kRowWidth = S::HEADS * kHeadWidth;
  RandomData<Act> q(static_cast<size_t>(T) * kRowWidth, -1.0f, 1.0f);
  std::vector<int> positions(T);
  std::uniform_int_distribution<int> pickPosition(0, 16383);
  for (int &p : positions)
    p = pickPosition(rng());
  positions[0] = 16383; // the longest context: angles of 16K radians
  std::vector<float> invFreq = yarnInverseFrequencies(S::ROPE);
  DeviceBuffer<Act> dQ(q.stored.size());
  DeviceBuffer<int> dPositions(T);
  DeviceBuffer<float> dInvFreq(invFreq.size());
  dQ.upload(q.stored);
  dPositions.upload(positions);
  dInvFreq.upload(invFreq);
  launchRopeQ<S>(dQ.ptr, dPositions.ptr, dInvFreq.ptr, T);
  std::vector<float> out = valuesOf(dQ.download());
  std::vector<float> roped;
  std::vector<double> ref;
  size_t nopeChanged = 0;
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < S::HEADS; ++h) {
      size_t head = static_cast<size_t>(t) * kRowWidth + h * kHeadWidth;
      for (int n = 0; n < S::NOPE; ++n)
        nopeChanged += std::memcmp(&out[head + n], &q.values[head + n], sizeof(float)) != 0;
      double expected[S::ROPE];
      referenceRope(&q.values[head + S::NOPE], S::ROPE, positions[t], invFreq, S::kRopeScale,
                    expected);
      for (int i = 0; i < S::ROPE; ++i) {
        roped.push_back(out[head + S::NOPE + i]);
        ref.push_back(expected[i]);
      }
    }
  std::string shape = shapeName<S, Act>("T=" + std::to_string(T));
  report("mla_rope_q", shape, relativeError(roped, ref), outputTolerance<Act>(kFp32Rope));
  report("mla_rope_q nope untouched", shape, static_cast<double>(nopeChanged), kExact);
}

/// kv_write for `batch` tokens (in shuffled order) into a poisoned paged cache
/// of the given capacities; kv_a of type Act, the cache bf16.
template <class S, typename Act>
void testKvWrite(const std::vector<int> &capacities, TokenBatch batch, const std::string &label) {
  constexpr int kRow = S::KV_LORA + S::ROPE;
  // Token order must not matter: shuffle it.
  std::vector<int> order(batch.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng());
  TokenBatch shuffled;
  for (int i : order) {
    shuffled.sequence.push_back(batch.sequence[i]);
    shuffled.position.push_back(batch.position[i]);
  }
  batch = shuffled;
  int tokens = batch.size();
  PagedLayout layout = makePagedLayout(capacities, S::PAGE);
  RandomData<Act> kvA(static_cast<size_t>(tokens) * kRow, -3.0f, 3.0f);
  RandomData<bf16> normW(S::KV_LORA, 0.5f, 1.5f);
  std::vector<float> invFreq = yarnInverseFrequencies(S::ROPE);
  size_t cacheSize = static_cast<size_t>(layout.numPages) * S::PAGE * kRow;
  DeviceBuffer<Act> dKvA(kvA.stored.size());
  DeviceBuffer<bf16> dNormW(S::KV_LORA), dCache(cacheSize);
  DeviceBuffer<int> dPositions(tokens), dSequences(tokens), dBlockTable(layout.blockTable.size());
  DeviceBuffer<float> dInvFreq(invFreq.size());
  dKvA.upload(kvA.stored);
  dNormW.upload(normW.stored);
  dPositions.upload(batch.position);
  dSequences.upload(batch.sequence);
  dBlockTable.upload(layout.blockTable);
  dInvFreq.upload(invFreq);
  dCache.poison();
  launchKvWrite<S>(dKvA.ptr, dNormW.ptr, dPositions.ptr, dSequences.ptr, dBlockTable.ptr,
                   layout.maxPages, dInvFreq.ptr, dCache.ptr, tokens);
  std::vector<bf16> cacheBits = dCache.download();
  std::vector<bool> owned(cacheSize, false);
  std::vector<bf16> latentOut, ropeOut;
  std::vector<double> latentRef, ropeRef;
  for (int t = 0; t < tokens; ++t) {
    size_t row = static_cast<size_t>(layout.slot(batch.sequence[t], batch.position[t])) * kRow;
    std::fill(owned.begin() + row, owned.begin() + row + kRow, true);
    double latent[S::KV_LORA], rope[S::ROPE];
    referenceNorm(&kvA.values[static_cast<size_t>(t) * kRow], normW.values.data(), S::KV_LORA,
                  latent);
    referenceRope(&kvA.values[static_cast<size_t>(t) * kRow + S::KV_LORA], S::ROPE,
                  batch.position[t], invFreq, S::kRopeScale, rope);
    for (int i = 0; i < S::KV_LORA; ++i) {
      latentOut.push_back(cacheBits[row + i]);
      latentRef.push_back(latent[i]);
    }
    for (int i = 0; i < S::ROPE; ++i) {
      ropeOut.push_back(cacheBits[row + S::KV_LORA + i]);
      ropeRef.push_back(rope[i]);
    }
  }
  std::string shape = shapeName<S, Act>(label + " T=" + std::to_string(tokens));
  report("mla_kv_write latent", shape, relativeError(fromBf16(latentOut), latentRef),
         kBf16Output);
  report("mla_kv_write latent rounding misses", shape, bf16RoundingMisses(latentOut, latentRef),
         bf16RoundingMissTolerance(latentOut.size()));
  report("mla_kv_write k_pe", shape, relativeError(fromBf16(ropeOut), ropeRef), kBf16Output);
  report("mla_kv_write other rows", shape,
         static_cast<double>(countChangedFromPoison(cacheBits, owned)), kExact);
}

/// mla_attention on a random paged cache holding `lengths` positions per
/// sequence; `decode` picks one token per sequence at its last position, else
/// every position attends (prefill). q, q_lat and out_lat are Act.
/// G: heads per block, 0 for the kernel's default (dsv3c uses 1 for steps of
/// at most 16 tokens, the default above).
template <class S, typename Act, int G = 0>
void testAttention(const std::vector<int> &lengths, bool decode) {
  constexpr int kRow = S::KV_LORA + S::ROPE;
  PagedLayout layout = makePagedLayout(lengths, S::PAGE);
  TokenBatch batch = decode ? decodeTokens(lengths) : prefillTokens(lengths);
  int T = batch.size();
  size_t cacheSize = static_cast<size_t>(layout.numPages) * S::PAGE * kRow;
  RandomData<bf16> cache(cacheSize, -1.0f, 1.0f);
  // The spare page (every table entry past a sequence's pages) holds NaN.
  for (int i = 0; i < S::PAGE * kRow; ++i) {
    size_t at = static_cast<size_t>(layout.sparePage) * S::PAGE * kRow + i;
    std::memset(static_cast<void *>(&cache.stored[at]), 0xFF, sizeof(bf16));
  }
  RandomData<Act> qLat(static_cast<size_t>(T) * S::HEADS * S::KV_LORA, -2.0f, 2.0f);
  RandomData<Act> q(static_cast<size_t>(T) * S::HEADS * (S::NOPE + S::ROPE), -2.0f, 2.0f);
  DeviceBuffer<bf16> dCache(cacheSize);
  DeviceBuffer<Act> dQLat(qLat.stored.size()), dQ(q.stored.size());
  DeviceBuffer<Act> dOutLat(static_cast<size_t>(T) * S::HEADS * S::KV_LORA);
  DeviceBuffer<int> dPositions(T), dSequences(T), dBlockTable(layout.blockTable.size());
  dCache.upload(cache.stored);
  dQLat.upload(qLat.stored);
  dQ.upload(q.stored);
  dPositions.upload(batch.position);
  dSequences.upload(batch.sequence);
  dBlockTable.upload(layout.blockTable);
  dOutLat.poison();
  launchAttention<S, G>(dQLat.ptr, dQ.ptr, dCache.ptr, dBlockTable.ptr, layout.maxPages,
                        dSequences.ptr, dPositions.ptr, dOutLat.ptr, T);
  std::vector<float> outLat = valuesOf(dOutLat.download());
  std::vector<int> checked = sampleTokens(batch, 48);
  std::vector<double> ref(checked.size() * S::HEADS * S::KV_LORA);
  parallelFor(checked.size() * S::HEADS, [&](size_t index) {
    int t = checked[index / S::HEADS], h = static_cast<int>(index % S::HEADS);
    referenceAttention<S>(qLat.values, q.values, cache.values, layout, t, batch.sequence[t],
                          batch.position[t], h, &ref[index * S::KV_LORA]);
  });
  std::vector<float> out;
  for (int t : checked)
    out.insert(out.end(), outLat.begin() + static_cast<size_t>(t) * S::HEADS * S::KV_LORA,
               outLat.begin() + static_cast<size_t>(t + 1) * S::HEADS * S::KV_LORA);
  std::string shape = shapeName<S, Act>(std::string(decode ? "decode ctx " : "prefill ") +
                                        lengthsName(lengths) + " T=" + std::to_string(T) + " (" +
                                        std::to_string(checked.size()) + " checked)" +
                                        (G > 0 ? " G=" + std::to_string(G) : ""));
  double tolerance = outputTolerance<Act>(kFp32Sum);
  report("mla_attention", shape, relativeError(out, ref), tolerance);
  report("mla_attention worst token", shape,
         worstTokenError(out, ref, static_cast<size_t>(S::HEADS) * S::KV_LORA), tolerance);
  // Every token's output must be written, checked or not.
  size_t unwritten = 0;
  for (float v : outLat)
    unwritten += !std::isfinite(v);
  report("mla_attention all written", shape, static_cast<double>(unwritten), kExact);
  std::printf("  mla_attention %s: %.3f ms (median of 20, for the record; speed is not checked)\n",
              shape.c_str(), 1e-3 * medianMicros([&] {
                launchAttention<S, G>(dQLat.ptr, dQ.ptr, dCache.ptr, dBlockTable.ptr,
                                      layout.maxPages, dSequences.ptr, dPositions.ptr,
                                      dOutLat.ptr, T);
              }));
}

// ---- the whole absorbed pipeline against plain MLA -------------------------

/// Plain MLA in float64 for the tokens of one step, given every cached
/// position's latent c (HF-normalized) and roped k_pe of each sequence.
template <class S> struct PlainMla {
  const std::vector<float> &kvB;
  std::vector<std::vector<double>> keyNope, value, keyRope; // per sequence: [pos][h][*], [pos][ROPE]

  /// k_nope = W_UK c and v = W_UV c per head for every cached position.
  void project(const std::vector<std::vector<std::vector<double>>> &latents,
               const std::vector<std::vector<std::vector<double>>> &ropes) {
    size_t sequences = latents.size();
    keyNope.assign(sequences, {});
    value.assign(sequences, {});
    keyRope.assign(sequences, {});
    for (size_t s = 0; s < sequences; ++s) {
      size_t positions = latents[s].size();
      keyNope[s].assign(positions * S::HEADS * S::NOPE, 0.0);
      value[s].assign(positions * S::HEADS * S::V, 0.0);
      for (size_t p = 0; p < positions; ++p)
        keyRope[s].insert(keyRope[s].end(), ropes[s][p].begin(), ropes[s][p].end());
      parallelFor(positions * S::HEADS, [&](size_t index) {
        size_t p = index / S::HEADS;
        int h = static_cast<int>(index % S::HEADS);
        const std::vector<double> &c = latents[s][p];
        for (int r = 0; r < S::NOPE + S::V; ++r) {
          const float *w = &kvB[(static_cast<size_t>(h) * (S::NOPE + S::V) + r) * S::KV_LORA];
          double sum = 0;
          for (int i = 0; i < S::KV_LORA; ++i)
            sum += c[i] * w[i];
          if (r < S::NOPE)
            keyNope[s][index * S::NOPE + r] = sum;
          else
            value[s][index * S::V + (r - S::NOPE)] = sum;
        }
      });
    }
  }

  /// out[h V + v] for one query (q_nope as given, q_pe roped in float64).
  void attend(int sequence, int position, const float *qRow, int qPosition,
              const std::vector<float> &invFreq, double *out) const {
    for (int h = 0; h < S::HEADS; ++h) {
      const float *qHead = qRow + h * (S::NOPE + S::ROPE);
      double qRope[S::ROPE];
      referenceRope(qHead + S::NOPE, S::ROPE, qPosition, invFreq, S::kRopeScale, qRope);
      std::vector<double> scores(position + 1);
      double maxScore = -INFINITY;
      for (int j = 0; j <= position; ++j) {
        const double *kNope = &keyNope[sequence][(static_cast<size_t>(j) * S::HEADS + h) * S::NOPE];
        const double *kRope = &keyRope[sequence][static_cast<size_t>(j) * S::ROPE];
        double dot = 0;
        for (int n = 0; n < S::NOPE; ++n)
          dot += qHead[n] * kNope[n];
        for (int r = 0; r < S::ROPE; ++r)
          dot += qRope[r] * kRope[r];
        scores[j] = dot * static_cast<double>(S::softmaxScale());
        maxScore = std::max(maxScore, scores[j]);
      }
      double denominator = 0;
      for (double &s : scores) {
        s = std::exp(s - maxScore);
        denominator += s;
      }
      double *outHead = out + h * S::V;
      std::fill(outHead, outHead + S::V, 0.0);
      for (int j = 0; j <= position; ++j) {
        const double *v = &value[sequence][(static_cast<size_t>(j) * S::HEADS + h) * S::V];
        double weight = scores[j] / denominator;
        for (int i = 0; i < S::V; ++i)
          outHead[i] += weight * v[i];
      }
    }
  }
};

/// Prefill of `lengths` tokens per sequence through rope_q, q_absorb,
/// kv_write, attention and out_absorb, then one decode step (a new token per
/// sequence at position lengths[s]) on the same cache; both outputs against
/// plain MLA in float64. Act is the activations' type (q, kv_a, q_lat,
/// out_lat).
template <class S, typename Act> void testPipeline(const std::vector<int> &lengths) {
  constexpr int kRow = S::KV_LORA + S::ROPE, kQWidth = S::HEADS * (S::NOPE + S::ROPE);
  std::vector<int> capacities = lengths;
  for (int &c : capacities)
    c += 1; // room for the decode token
  PagedLayout layout = makePagedLayout(capacities, S::PAGE);
  std::vector<float> invFreq = yarnInverseFrequencies(S::ROPE);
  // kv_b scaled so that scores spread over a few units (a peaked, realistic
  // softmax rather than a near-uniform average).
  RandomData<bf16> kvB(static_cast<size_t>(S::HEADS) * (S::NOPE + S::V) * S::KV_LORA, -0.15f,
                       0.15f);
  RandomData<bf16> normW(S::KV_LORA, 0.5f, 1.5f);
  size_t cacheSize = static_cast<size_t>(layout.numPages) * S::PAGE * kRow;
  DeviceBuffer<bf16> dKvB(kvB.stored.size()), dNormW(S::KV_LORA), dCache(cacheSize);
  DeviceBuffer<int> dBlockTable(layout.blockTable.size());
  DeviceBuffer<float> dInvFreq(invFreq.size());
  dKvB.upload(kvB.stored);
  dNormW.upload(normW.stored);
  dBlockTable.upload(layout.blockTable);
  dInvFreq.upload(invFreq);
  dCache.poison();

  // Host view of the cache contents the plain reference uses: per sequence,
  // per position, c and k_pe rounded to bf16 as both forms store them.
  size_t sequences = lengths.size();
  std::vector<std::vector<std::vector<double>>> latents(sequences), ropes(sequences);

  for (bool decode : {false, true}) {
    TokenBatch batch;
    if (decode)
      batch = decodeTokens(capacities);
    else
      batch = prefillTokens(lengths);
    int T = batch.size();
    RandomData<Act> q(static_cast<size_t>(T) * kQWidth, -1.0f, 1.0f);
    RandomData<Act> kvA(static_cast<size_t>(T) * kRow, -1.0f, 1.0f);
    DeviceBuffer<Act> dQ(q.stored.size()), dKvA(kvA.stored.size());
    DeviceBuffer<Act> dQLat(static_cast<size_t>(T) * S::HEADS * S::KV_LORA);
    DeviceBuffer<Act> dOutLat(dQLat.n);
    DeviceBuffer<bf16> dOut(static_cast<size_t>(T) * S::HEADS * S::V);
    DeviceBuffer<int> dPositions(T), dSequences(T);
    dQ.upload(q.stored);
    dKvA.upload(kvA.stored);
    dPositions.upload(batch.position);
    dSequences.upload(batch.sequence);
    dQLat.poison();
    dOutLat.poison();
    dOut.poison();

    launchRopeQ<S>(dQ.ptr, dPositions.ptr, dInvFreq.ptr, T);
    launchQAbsorb<S>(dQ.ptr, dKvB.ptr, dQLat.ptr, T);
    launchKvWrite<S>(dKvA.ptr, dNormW.ptr, dPositions.ptr, dSequences.ptr, dBlockTable.ptr,
                     layout.maxPages, dInvFreq.ptr, dCache.ptr, T);
    launchAttention<S>(dQLat.ptr, dQ.ptr, dCache.ptr, dBlockTable.ptr, layout.maxPages,
                       dSequences.ptr, dPositions.ptr, dOutLat.ptr, T);
    launchOutAbsorb<S>(dOutLat.ptr, dKvB.ptr, dOut.ptr, T);
    // The decode step also through mla_decode_attention (64 heads per block,
    // split over 66 blocks), as dsv3c runs decode steps.
    DeviceBuffer<Act> dDecodeOutLat(dQLat.n);
    DeviceBuffer<bf16> dDecodeOut(dOut.n);
    if (decode)
      launchSplitDecode<S>(dQLat.ptr, dQ.ptr, dCache.ptr, dBlockTable.ptr, layout.maxPages,
                           dSequences.ptr, dPositions.ptr, dDecodeOutLat.ptr, dDecodeOut.ptr,
                           dKvB.ptr, T);

    // The reference's cache: c = bf16(rms_norm) and k_pe = bf16(rope), as
    // the model stores them. Tokens arrive in position order per sequence.
    for (int t = 0; t < T; ++t) {
      std::vector<double> latent(S::KV_LORA), rope(S::ROPE);
      referenceNorm(&kvA.values[static_cast<size_t>(t) * kRow], normW.values.data(), S::KV_LORA,
                    latent.data());
      referenceRope(&kvA.values[static_cast<size_t>(t) * kRow + S::KV_LORA], S::ROPE,
                    batch.position[t], invFreq, S::kRopeScale, rope.data());
      for (double &c : latent)
        c = roundTo<bf16>(c);
      for (double &k : rope)
        k = roundTo<bf16>(k);
      latents[batch.sequence[t]].push_back(latent);
      ropes[batch.sequence[t]].push_back(rope);
    }
    PlainMla<S> plain{kvB.values, {}, {}, {}};
    plain.project(latents, ropes);

    std::vector<int> checked = sampleTokens(batch, 64);
    std::vector<double> ref(checked.size() * S::HEADS * S::V);
    parallelFor(checked.size(), [&](size_t i) {
      int t = checked[i];
      plain.attend(batch.sequence[t], batch.position[t], &q.values[static_cast<size_t>(t) * kQWidth],
                   batch.position[t], invFreq, &ref[i * S::HEADS * S::V]);
    });
    std::vector<float> all = fromBf16(dOut.download()), out;
    for (int t : checked)
      out.insert(out.end(), all.begin() + static_cast<size_t>(t) * S::HEADS * S::V,
                 all.begin() + static_cast<size_t>(t + 1) * S::HEADS * S::V);
    std::string shape = shapeName<S, Act>(std::string(decode ? "decode after " : "prefill ") +
                                          lengthsName(lengths) + " (" +
                                          std::to_string(checked.size()) + " tokens checked)");
    // Several roundings either way (see the tolerances above).
    double tolerance = kPipelineBf16;
    report("absorbed vs plain MLA", shape, relativeError(out, ref), tolerance);
    report("absorbed vs plain worst token", shape,
           worstTokenError(out, ref, static_cast<size_t>(S::HEADS) * S::V), tolerance);
    size_t unwritten = 0;
    for (float v : all)
      unwritten += !std::isfinite(v);
    report("absorbed MLA all written", shape, static_cast<double>(unwritten), kExact);
    if (decode) {
      // bf16 queries and probabilities in the tensor-core products: a few
      // roundings of 1e-3, as bf16 activations.
      std::vector<float> decodeAll = fromBf16(dDecodeOut.download()), decodeOut;
      for (int t : checked)
        decodeOut.insert(decodeOut.end(), decodeAll.begin() + static_cast<size_t>(t) * S::HEADS * S::V,
                         decodeAll.begin() + static_cast<size_t>(t + 1) * S::HEADS * S::V);
      report("absorbed (mla_decode) vs plain", shape, relativeError(decodeOut, ref),
             kPipelineBf16);
      report("absorbed (mla_decode) vs plain worst token", shape,
             worstTokenError(decodeOut, ref, static_cast<size_t>(S::HEADS) * S::V), kPipelineBf16);
    }
  }
}

/// Every test of one shape with activations of type Act.
template <class S, typename Act> void testShape(const std::vector<int> &pipelineLengths) {
  for (int T : {1, 37}) {
    testRopeQ<S, Act>(T);
  }
  const std::vector<int> prefillLengths = {1, 17, 300, 1000};
  const std::vector<int> decodeContexts = {4096, 16384, 513, 1};
  testKvWrite<S, Act>(prefillLengths, prefillTokens(prefillLengths),
                      "prefill " + lengthsName(prefillLengths));
  testKvWrite<S, Act>(decodeContexts, decodeTokens(decodeContexts),
                      "decode ctx " + lengthsName(decodeContexts));
  testAttention<S, Act>(prefillLengths, /*decode=*/false);
  testAttention<S, Act>(decodeContexts, /*decode=*/true);
  // One head per block, as dsv3c runs steps of at most 16 tokens: a decode
  // step, and a single 1024-token context at T = 1.
  testAttention<S, Act, 1>(decodeContexts, /*decode=*/true);
  testAttention<S, Act, 1>({1024}, /*decode=*/true);
  testPipeline<S, Act>(pipelineLengths);
}

} // namespace

int main() {
  // float activations (what dsv3c instantiates), then bf16 (the defaults).
  // The float64 plain reference projects every cached position through all
  // 128 heads' kv_b (~17M multiply-adds each): shorter sequences for dsv3.
  testShape<TinyShape, float>({1, 17, 300, 1000});
  testShape<DeepSeekV3Shape, float>({1, 17, 130, 300});
  testShape<TinyShape, bf16>({1, 17, 300, 1000});
  testShape<DeepSeekV3Shape, bf16>({1, 17, 130, 300});
  return finish("mla_test");
}
