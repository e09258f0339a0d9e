//===- RandomFiller.cpp - random weights and KV cache on the GPU ----------===//

#include "tools/dsv3-bench/RandomFiller.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace dsv3::bench {

namespace {

// RandomFill.cu as nvcc compiled it (tools/dsv3-bench/CMakeLists.txt).
// Aligned because the driver parses the fatbin's headers in place.
alignas(16) const unsigned char kRandomFillFatbin[] = {
#include "RandomFillFatbin.inc"
};

constexpr int kFillThreads = 256;

} // namespace

StatusOr<std::unique_ptr<RandomFiller>>
RandomFiller::create(const exec::Device &device, int smCount) {
  std::unique_ptr<RandomFiller> filler(new RandomFiller(device, smCount));
  DSV3_RETURN_IF_ERROR(device.check(
      device.api().moduleLoadData(&filler->module_, kRandomFillFatbin),
      fmt::format("loading the random-fill kernels ({} bytes of fatbin for "
                  "sm_80/sm_90a/sm_100a and compute_80 PTX): cuModuleLoadData",
                  sizeof kRandomFillFatbin)));
  const std::pair<CUfunction *, const char *> functions[] = {
      {&filler->fillBf16_, "dsv3bench_fill_bf16"},
      {&filler->fillF32_, "dsv3bench_fill_f32"},
      {&filler->fillE4m3_, "dsv3bench_fill_e4m3"}};
  for (const auto &[function, name] : functions)
    DSV3_RETURN_IF_ERROR(device.check(
        device.api().moduleGetFunction(function, filler->module_, name),
        fmt::format("random-fill kernel '{}': cuModuleGetFunction", name)));
  return filler;
}

RandomFiller::~RandomFiller() {
  if (!module_)
    return;
  Status unloaded =
      device_.check(device_.api().moduleUnload(module_), "cuModuleUnload");
  if (!unloaded.ok())
    std::fprintf(stderr, "dsv3-bench: warning: %s\n", unloaded.message().c_str());
}

Status RandomFiller::fill(CUdeviceptr target, const FillSpec &spec,
                          std::string_view what) const {
  if (spec.count == 0)
    return Status::success();
  // Eight elements per thread and iteration; a few blocks per SM keep the
  // stores streaming.
  const uint64_t groups = (spec.count + 7) / 8;
  const uint64_t blocks = std::max<uint64_t>(
      1, std::min<uint64_t>((groups + kFillThreads - 1) / kFillThreads,
                            static_cast<uint64_t>(smCount_) * 8));
  unsigned long long count = spec.count, stream = spec.stream;
  int distribution = spec.kind == FillSpec::Kind::Uniform ? 1 : 0;
  float a = spec.a, b = spec.b;
  CUfunction function = nullptr;
  std::vector<void *> params;
  switch (spec.kind) {
  case FillSpec::Kind::Normal:
  case FillSpec::Kind::Uniform:
    if (spec.dtype == plan::DType::BF16)
      function = fillBf16_;
    else if (spec.dtype == plan::DType::F32)
      function = fillF32_;
    else
      return Status::error("{}: random normal or uniform values for {} are "
                           "not implemented (BF16 and F32 are)",
                           what, plan::EnumNameDType(spec.dtype));
    params = {&target, &count, &stream, &distribution, &a, &b};
    break;
  case FillSpec::Kind::E4m3:
    if (spec.dtype != plan::DType::F8_E4M3)
      return Status::error("{}: e4m3 codes asked for a {} buffer", what,
                           plan::EnumNameDType(spec.dtype));
    function = fillE4m3_;
    params = {&target, &count, &stream, &b};
    break;
  }
  return device_.check(
      device_.api().launchKernel(function, static_cast<unsigned>(blocks), 1, 1,
                                 kFillThreads, 1, 1, 0, device_.stream(),
                                 params.data(), nullptr),
      fmt::format("{}: launching the random fill of {} elements", what,
                  spec.count));
}

Status RandomFiller::fillWeights(const plan::Plan &plan,
                                 const exec::DeviceWeights &weights,
                                 uint64_t seed) const {
  for (size_t w = 0; w < weights.weightCount(); ++w) {
    DSV3_ASSIGN_OR_RETURN(FillSpec spec, weightFill(plan, w, seed));
    DSV3_RETURN_IF_ERROR(fill(weights.weightAddress(w), spec,
                              fmt::format("weight #{}", w)));
  }
  return device_.synchronize("filling the weights with random values");
}

Status RandomFiller::fillKvCache(const plan::Plan &plan,
                                 const exec::KvCache &cache, int64_t numPages,
                                 uint64_t seed) const {
  const uint64_t layerBytes = exec::kvCacheLayerBytes(plan, numPages);
  for (int layer = 0; layer < cache.layerCount(); ++layer) {
    FillSpec spec;
    spec.kind = FillSpec::Kind::Normal;
    spec.dtype = plan::DType::BF16;
    spec.a = 0;
    spec.b = 1;
    spec.count = layerBytes / 2;
    spec.stream = fillStream(seed, fmt::format("kv_cache.{}", layer));
    DSV3_RETURN_IF_ERROR(
        fill(cache.layerAddress(layer), spec, fmt::format("KV cache layer {}", layer)));
  }
  return device_.synchronize("filling the KV cache with random latents");
}

} // namespace dsv3::bench
