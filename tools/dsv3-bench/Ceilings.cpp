//===- Ceilings.cpp - the device's measured copy and GEMM ceilings --------===//

#include "tools/dsv3-bench/Ceilings.h"

#include "runtime/exec/CublasLt.h"
#include "tools/dsv3-bench/BenchReport.h"

#include <algorithm>

namespace dsv3::bench {

//===----------------------------------------------------------------------===//
// Timing
//===----------------------------------------------------------------------===//

StatusOr<EventTimer> EventTimer::create(const exec::Device &device) {
  EventTimer timer(device);
  DSV3_ASSIGN_OR_RETURN(timer.start_, device.createEvent(/*timing=*/true));
  DSV3_ASSIGN_OR_RETURN(timer.stop_, device.createEvent(/*timing=*/true));
  return timer;
}

Status EventTimer::start() {
  return device_->check(
      device_->api().eventRecord(start_.handle(), device_->stream()),
      "cuEventRecord (timer start)");
}

Status EventTimer::stop() {
  return device_->check(
      device_->api().eventRecord(stop_.handle(), device_->stream()),
      "cuEventRecord (timer stop)");
}

StatusOr<double> EventTimer::elapsedMs() {
  DSV3_RETURN_IF_ERROR(device_->check(
      device_->api().eventSynchronize(stop_.handle()),
      "cuEventSynchronize (the timed work failed)"));
  float milliseconds = 0;
  DSV3_RETURN_IF_ERROR(device_->check(
      device_->api().eventElapsedTime(&milliseconds, start_.handle(),
                                      stop_.handle()),
      "cuEventElapsedTime"));
  return static_cast<double>(milliseconds);
}

//===----------------------------------------------------------------------===//
// Copy bandwidth
//===----------------------------------------------------------------------===//

StatusOr<double> measureCopyBandwidth(const exec::Device &device,
                                      uint64_t bytes, int repetitions) {
  DSV3_ASSIGN_OR_RETURN(exec::DeviceBuffer source,
                        device.allocate(bytes, "copy-bandwidth source"));
  DSV3_ASSIGN_OR_RETURN(exec::DeviceBuffer target,
                        device.allocate(bytes, "copy-bandwidth target"));
  DSV3_RETURN_IF_ERROR(device.fill(source.address(), 0x5A, bytes));
  DSV3_ASSIGN_OR_RETURN(EventTimer timer, EventTimer::create(device));
  std::vector<double> times;
  for (int i = 0; i < repetitions + 2; ++i) {
    DSV3_RETURN_IF_ERROR(timer.start());
    DSV3_RETURN_IF_ERROR(device.check(
        device.api().memcpyDtoDAsync(target.address(), source.address(), bytes,
                                     device.stream()),
        "cuMemcpyDtoDAsync (copy bandwidth)"));
    DSV3_RETURN_IF_ERROR(timer.stop());
    DSV3_ASSIGN_OR_RETURN(double milliseconds, timer.elapsedMs());
    if (i >= 2) // the first two warm up
      times.push_back(milliseconds);
  }
  return 2.0 * static_cast<double>(bytes) / (median(times) * 1e-3);
}

//===----------------------------------------------------------------------===//
// GEMM peaks through cuBLASLt
//===----------------------------------------------------------------------===//

namespace {

/// One square GEMM D = Aᵀ·B of `size` with A, B of `inputType`, D bf16,
/// fp32 accumulation. Returns FLOP/s, or 0 when cuBLASLt offers no algorithm.
StatusOr<double> timeGemm(const exec::CublasLt &library,
                          const exec::Device &device, const RandomFiller &filler,
                          cudaDataType_t inputType, int64_t size,
                          int repetitions) {
  const exec::CublasLtApi &lt = library.api();
  cublasLtHandle_t handle = library.handle();
  auto checkBlas = [&](cublasStatus_t status, std::string_view call) {
    return library.check(status, call);
  };
  const bool fp8 = inputType == CUDA_R_8F_E4M3;
  const uint64_t n = static_cast<uint64_t>(size);
  const uint64_t inputBytes = n * n * (fp8 ? 1 : 2);
  const uint64_t workspaceBytes = 64ull << 20;
  DSV3_ASSIGN_OR_RETURN(exec::DeviceBuffer a, device.allocate(inputBytes, "GEMM A"));
  DSV3_ASSIGN_OR_RETURN(exec::DeviceBuffer b, device.allocate(inputBytes, "GEMM B"));
  DSV3_ASSIGN_OR_RETURN(exec::DeviceBuffer d, device.allocate(n * n * 2, "GEMM D"));
  DSV3_ASSIGN_OR_RETURN(exec::DeviceBuffer workspace,
                        device.allocate(workspaceBytes, "cuBLASLt workspace"));
  // Random operands: tensor-core speed and power depend on the data.
  for (auto [buffer, name] : {std::pair(&a, "A"), std::pair(&b, "B")}) {
    FillSpec spec;
    spec.kind = fp8 ? FillSpec::Kind::E4m3 : FillSpec::Kind::Normal;
    spec.dtype = fp8 ? plan::DType::F8_E4M3 : plan::DType::BF16;
    spec.b = fp8 ? 448.0f / kE4m3SigmasToMax : 1.0f;
    spec.count = n * n;
    spec.stream = fillStream(0, std::string("gemm peak ") + name);
    DSV3_RETURN_IF_ERROR(filler.fill(buffer->address(), spec,
                                     std::string("GEMM operand ") + name));
  }

  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t layoutA = nullptr, layoutB = nullptr, layoutD = nullptr;
  cublasLtMatmulPreference_t preference = nullptr;
  auto release = [&] {
    if (preference)
      lt.preferenceDestroy(preference);
    for (cublasLtMatrixLayout_t layout : {layoutA, layoutB, layoutD})
      if (layout)
        lt.layoutDestroy(layout);
    if (desc)
      lt.descDestroy(desc);
  };
  auto run = [&]() -> StatusOr<double> {
    const std::string what = fp8 ? "FP8 GEMM" : "BF16 GEMM";
    DSV3_RETURN_IF_ERROR(checkBlas(
        lt.descCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
        what + ": cublasLtMatmulDescCreate"));
    const cublasOperation_t transposed = CUBLAS_OP_T, plain = CUBLAS_OP_N;
    DSV3_RETURN_IF_ERROR(checkBlas(
        lt.descSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &transposed,
                            sizeof transposed),
        what + ": TRANSA"));
    DSV3_RETURN_IF_ERROR(checkBlas(
        lt.descSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &plain,
                            sizeof plain),
        what + ": TRANSB"));
    if (fp8) {
      const int8_t fastAccumulation = 1;
      DSV3_RETURN_IF_ERROR(checkBlas(
          lt.descSetAttribute(desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM,
                              &fastAccumulation, sizeof fastAccumulation),
          what + ": FAST_ACCUM"));
    }
    // Column-major: A stored K×M (used transposed), B K×N, D M×N.
    DSV3_RETURN_IF_ERROR(checkBlas(lt.layoutCreate(&layoutA, inputType, n, n, size),
                                   what + ": layout A"));
    DSV3_RETURN_IF_ERROR(checkBlas(lt.layoutCreate(&layoutB, inputType, n, n, size),
                                   what + ": layout B"));
    DSV3_RETURN_IF_ERROR(checkBlas(lt.layoutCreate(&layoutD, CUDA_R_16BF, n, n, size),
                                   what + ": layout D"));
    DSV3_RETURN_IF_ERROR(checkBlas(lt.preferenceCreate(&preference),
                                   what + ": cublasLtMatmulPreferenceCreate"));
    DSV3_RETURN_IF_ERROR(checkBlas(
        lt.preferenceSetAttribute(preference,
                                  CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                  &workspaceBytes, sizeof workspaceBytes),
        what + ": workspace preference"));
    cublasLtMatmulHeuristicResult_t heuristic = {};
    int found = 0;
    cublasStatus_t searched =
        lt.algoGetHeuristic(handle, desc, layoutA, layoutB, layoutD, layoutD,
                            preference, 1, &heuristic, &found);
    if (searched == CUBLAS_STATUS_NOT_SUPPORTED || (searched == CUBLAS_STATUS_SUCCESS && found == 0))
      return 0.0; // no such GEMM on this device (FP8 before sm_89)
    DSV3_RETURN_IF_ERROR(checkBlas(searched, what + ": cublasLtMatmulAlgoGetHeuristic"));

    const float alpha = 1.0f, beta = 0.0f;
    DSV3_ASSIGN_OR_RETURN(EventTimer timer, EventTimer::create(device));
    std::vector<double> times;
    for (int i = 0; i < repetitions + 3; ++i) {
      DSV3_RETURN_IF_ERROR(timer.start());
      DSV3_RETURN_IF_ERROR(checkBlas(
          lt.matmul(handle, desc, &alpha,
                    reinterpret_cast<const void *>(a.address()), layoutA,
                    reinterpret_cast<const void *>(b.address()), layoutB, &beta,
                    reinterpret_cast<const void *>(d.address()), layoutD,
                    reinterpret_cast<void *>(d.address()), layoutD,
                    &heuristic.algo, reinterpret_cast<void *>(workspace.address()),
                    workspaceBytes, device.stream()),
          what + ": cublasLtMatmul"));
      DSV3_RETURN_IF_ERROR(timer.stop());
      DSV3_ASSIGN_OR_RETURN(double milliseconds, timer.elapsedMs());
      if (i >= 3) // three warm-ups
        times.push_back(milliseconds);
    }
    return 2.0 * static_cast<double>(n) * n * n / (median(times) * 1e-3);
  };
  StatusOr<double> flops = run();
  release();
  return flops;
}

} // namespace

StatusOr<GemmPeaks> measureGemmPeaks(const exec::Device &device,
                                     const RandomFiller &filler, int64_t size,
                                     int repetitions) {
  GemmPeaks peaks;
  StatusOr<std::unique_ptr<exec::CublasLt>> opened = exec::CublasLt::open();
  if (!opened.ok()) {
    peaks.description = "not measured: " + opened.status().message();
    return peaks;
  }
  exec::CublasLt &lt = **opened;
  DSV3_RETURN_IF_ERROR(lt.createHandle());
  StatusOr<double> bf16 =
      timeGemm(lt, device, filler, CUDA_R_16BF, size, repetitions);
  StatusOr<double> fp8 = bf16.ok() ? timeGemm(lt, device, filler,
                                              CUDA_R_8F_E4M3, size, repetitions)
                                   : StatusOr<double>(0.0);
  if (!bf16.ok())
    return bf16.status();
  if (!fp8.ok())
    return fp8.status();
  if (*bf16 <= 0) {
    peaks.description = fmt::format("not measured: {} offers no BF16 GEMM "
                                    "on this device",
                                    lt.path());
    return peaks;
  }
  peaks.measured = true;
  peaks.bf16FlopsPerSecond = *bf16;
  peaks.fp8FlopsPerSecond = *fp8;
  peaks.description = fmt::format(
      "cuBLASLt {} ({}), M=N=K={}, bf16 out, fp32 accumulation; FP8 "
      "e4m3 per-tensor scaling, fast accumulation{}",
      lt.versionText(), lt.path(), size,
      *fp8 > 0 ? "" : " (none on this device)");
  return peaks;
}

} // namespace dsv3::bench
