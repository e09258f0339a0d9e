//===- WeightLoader.cpp - checkpoint tensors to device weights ------------===//

#include "runtime/exec/WeightLoader.h"

#include "runtime/exec/Dequantize.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include <unistd.h>

namespace dsv3::exec {

Dtype checkpointDtype(plan::DType dtype) {
  switch (dtype) {
  case plan::DType::BF16:
    return Dtype::BF16;
  case plan::DType::F16:
    return Dtype::F16;
  case plan::DType::F32:
    return Dtype::F32;
  case plan::DType::F8_E4M3:
    return Dtype::F8_E4M3;
  case plan::DType::I32:
    return Dtype::I32;
  }
  return Dtype::U8; // unreachable for verified plans
}

namespace {

std::vector<int64_t> toShape(const flatbuffers::Vector<int64_t> *shape) {
  return shape ? std::vector<int64_t>(shape->begin(), shape->end())
               : std::vector<int64_t>();
}

unsigned resolveThreads(unsigned threads) {
  return threads ? threads : std::max(1u, std::thread::hardware_concurrency());
}

/// memcpy, split over threads for large copies: reading a memory-mapped
/// checkpoint is bound by page faults, which parallelize.
void parallelCopy(uint8_t *target, const uint8_t *source, uint64_t bytes,
                  unsigned threads) {
  constexpr uint64_t kPerThread = 8ull << 20;
  const uint64_t workers =
      std::min<uint64_t>(std::min(threads, 16u), bytes / kPerThread);
  if (workers <= 1) {
    std::memcpy(target, source, bytes);
    return;
  }
  std::vector<std::thread> pool;
  for (uint64_t w = 0; w < workers; ++w) {
    const uint64_t begin = bytes * w / workers, end = bytes * (w + 1) / workers;
    pool.emplace_back(
        [=] { std::memcpy(target + begin, source + begin, end - begin); });
  }
  for (std::thread &thread : pool)
    thread.join();
}

/// Host-to-device uploads through two pinned buffers used in turn: while the
/// DMA engine copies one, the CPU fills the other.
class StagedUploader {
public:
  static StatusOr<StagedUploader> create(const Device &device,
                                         uint64_t halfBytes, unsigned threads) {
    StagedUploader uploader(device, halfBytes, threads);
    for (int h = 0; h < 2; ++h) {
      DSV3_ASSIGN_OR_RETURN(uploader.halves_[h],
                            device.allocatePinned(halfBytes, "weight staging"));
      DSV3_ASSIGN_OR_RETURN(uploader.done_[h], device.createEvent());
    }
    return uploader;
  }

  Status upload(CUdeviceptr target, const uint8_t *source, uint64_t bytes) {
    while (bytes > 0) {
      if (used_ == halfBytes_)
        DSV3_RETURN_IF_ERROR(switchHalf());
      const uint64_t piece = std::min(bytes, halfBytes_ - used_);
      uint8_t *staging = halves_[current_].data() + used_;
      parallelCopy(staging, source, piece, threads_);
      DSV3_RETURN_IF_ERROR(device_->copyToDevice(target, staging, piece));
      used_ += piece;
      source += piece;
      target += piece;
      bytes -= piece;
    }
    return Status::success();
  }

  /// Waits until every queued upload has reached the device.
  Status finish() { return device_->synchronize("uploading weights"); }

private:
  StagedUploader(const Device &device, uint64_t halfBytes, unsigned threads)
      : device_(&device), halfBytes_(halfBytes), threads_(threads) {}

  /// Marks the current half's copies and moves to the other half, waiting
  /// until the copies out of it have finished.
  Status switchHalf() {
    DSV3_RETURN_IF_ERROR(device_->check(
        device_->api().eventRecord(done_[current_].handle(), device_->stream()),
        "cuEventRecord"));
    inFlight_[current_] = true;
    current_ ^= 1;
    if (inFlight_[current_])
      DSV3_RETURN_IF_ERROR(device_->check(
          device_->api().eventSynchronize(done_[current_].handle()),
          "cuEventSynchronize while uploading weights"));
    inFlight_[current_] = false;
    used_ = 0;
    return Status::success();
  }

  const Device *device_;
  uint64_t halfBytes_;
  unsigned threads_;
  PinnedBuffer halves_[2];
  DeviceEvent done_[2];
  bool inFlight_[2] = {false, false};
  int current_ = 0;
  uint64_t used_ = 0;
};

/// `loading weights: 1234/46183 tensors, 12.3/688.6 GB` on stderr: redrawn
/// in place a few times a second on a terminal, one line per tenth of the
/// bytes otherwise (logs).
class LoadProgress {
public:
  LoadProgress(bool enabled, uint64_t totalTensors, uint64_t totalBytes)
      : enabled_(enabled), terminal_(::isatty(STDERR_FILENO) == 1),
        totalTensors_(totalTensors), totalBytes_(totalBytes),
        start_(std::chrono::steady_clock::now()), lastPrint_(start_) {}

  void addTensor(uint64_t bytes) {
    ++tensors_;
    bytes_ += bytes;
    if (!enabled_)
      return;
    const auto now = std::chrono::steady_clock::now();
    if (terminal_) {
      if (now - lastPrint_ >= std::chrono::milliseconds(200)) {
        print(false);
        lastPrint_ = now;
      }
    } else if (totalBytes_ > 0 && bytes_ * 10 / totalBytes_ > printedTenths_) {
      printedTenths_ = bytes_ * 10 / totalBytes_;
      if (printedTenths_ < 10)
        print(false);
    }
  }

  void finish() {
    if (!enabled_)
      return;
    print(true);
  }

private:
  void print(bool last) {
    std::fprintf(stderr, "%sloading weights: %llu/%llu tensors, %.1f/%.1f GB",
                 terminal_ ? "\r" : "",
                 static_cast<unsigned long long>(tensors_),
                 static_cast<unsigned long long>(totalTensors_), bytes_ / 1e9,
                 totalBytes_ / 1e9);
    if (last) {
      double seconds = std::chrono::duration<double>(
                           std::chrono::steady_clock::now() - start_)
                           .count();
      std::fprintf(stderr, " in %.1f s", seconds);
    }
    if (!terminal_ || last)
      std::fputc('\n', stderr);
    std::fflush(stderr);
  }

  bool enabled_, terminal_;
  uint64_t totalTensors_, totalBytes_;
  uint64_t tensors_ = 0, bytes_ = 0, printedTenths_ = 0;
  std::chrono::steady_clock::time_point start_, lastPrint_;
};

} // namespace

Status checkWeightSources(const plan::Plan &plan, const Checkpoint &checkpoint) {
  std::optional<Status> first;
  size_t more = 0;
  if (plan.weights())
    for (const plan::Weight *weight : *plan.weights())
      for (const plan::CheckpointTensor *source : *weight->sources()) {
        Status checked = checkpoint.checkTensor(
            source->name()->string_view(), checkpointDtype(source->dtype()),
            toShape(source->shape()));
        if (checked.ok())
          continue;
        if (!first)
          first = checked;
        else
          ++more;
      }
  if (!first)
    return Status::success();
  if (more == 0)
    return *first;
  return Status::error("{} (and {} more checkpoint tensor{} missing or "
                       "different)",
                       first->message(), more, more == 1 ? "" : "s");
}

StatusOr<DeviceWeights> allocateWeights(const Device &device,
                                        const plan::Plan &plan) {
  DeviceWeights weights;
  weights.layout_ = plan::layoutWeights(plan);
  DSV3_ASSIGN_OR_RETURN(weights.buffer_,
                        device.allocate(weights.layout_.totalBytes,
                                        "weights and constants"));
  // Constants are small (rope tables): copied straight from the plan, which
  // the driver reads before each call returns.
  const size_t constantCount = plan.constants() ? plan.constants()->size() : 0;
  for (size_t c = 0; c < constantCount; ++c) {
    const auto *data = plan.constants()->Get(c)->data();
    DSV3_RETURN_IF_ERROR(
        device.copyToDevice(weights.constantAddress(c), data->data(),
                            data->size())
            .withPrefix(fmt::format("uploading constant {}: ", c)));
  }
  return weights;
}

StatusOr<DeviceWeights> loadWeights(const Device &device, const plan::Plan &plan,
                                    const Checkpoint &checkpoint,
                                    const WeightLoadOptions &options) {
  DSV3_RETURN_IF_ERROR(checkWeightSources(plan, checkpoint));
  const unsigned threads = resolveThreads(options.threads);

  uint64_t totalTensors = 0, totalBytes = 0;
  if (plan.weights())
    for (const plan::Weight *weight : *plan.weights())
      for (const plan::CheckpointTensor *source : *weight->sources()) {
        ++totalTensors;
        totalBytes += checkpoint.find(source->name()->string_view())->bytes.size;
      }

  DSV3_ASSIGN_OR_RETURN(DeviceWeights weights, allocateWeights(device, plan));
  DSV3_ASSIGN_OR_RETURN(
      StagedUploader uploader,
      StagedUploader::create(device, options.stagingBytes, threads));
  LoadProgress progress(options.showProgress, totalTensors, totalBytes);

  const size_t weightCount = plan.weights() ? plan.weights()->size() : 0;
  for (size_t w = 0; w < weightCount; ++w) {
    const plan::Weight &weight = *plan.weights()->Get(w);
    const CUdeviceptr target = weights.weightAddress(w);
    const auto &sources = *weight.sources();
    switch (weight.transform()) {
    case plan::WeightTransform::Copy:
    case plan::WeightTransform::Stack: {
      // Copy is a stack of one: each source fills the next slice.
      uint64_t offset = 0;
      for (const plan::CheckpointTensor *source : sources) {
        const TensorInfo &tensor =
            *checkpoint.find(source->name()->string_view());
        DSV3_RETURN_IF_ERROR(
            uploader.upload(target + offset, tensor.bytes.data, tensor.bytes.size)
                .withPrefix(fmt::format("uploading '{}': ", tensor.name)));
        offset += tensor.bytes.size;
        progress.addTensor(tensor.bytes.size);
      }
      break;
    }
    case plan::WeightTransform::DequantizeBf16: {
      const TensorInfo &values =
          *checkpoint.find(sources.Get(0)->name()->string_view());
      const TensorInfo &scaleTensor =
          *checkpoint.find(sources.Get(1)->name()->string_view());
      const int64_t rows = values.shape[0], cols = values.shape[1];
      // Safetensors packs tensors without padding: the scales need not be
      // 4-byte aligned in the mapping, so read them through a copy.
      std::vector<float> scales(scaleTensor.numel());
      std::memcpy(scales.data(), scaleTensor.bytes.data, scaleTensor.bytes.size);
      std::vector<uint16_t> converted(static_cast<size_t>(rows * cols));
      dequantizeFp8ToBf16(values.bytes.data, scales.data(), rows, cols,
                          weight.block()->Get(0), weight.block()->Get(1),
                          converted.data(), threads);
      DSV3_RETURN_IF_ERROR(
          uploader
              .upload(target, reinterpret_cast<const uint8_t *>(converted.data()),
                      converted.size() * sizeof(uint16_t))
              .withPrefix(fmt::format("uploading '{}' as bf16: ", values.name)));
      progress.addTensor(values.bytes.size);
      progress.addTensor(scaleTensor.bytes.size);
      break;
    }
    }
  }
  DSV3_RETURN_IF_ERROR(uploader.finish());
  progress.finish();
  return weights;
}

} // namespace dsv3::exec
