//===- Device.h - one GPU: context, stream, memory -----------------*- C++ -*-===//
//
// A Device is the explicit context every runtime object that touches the GPU
// takes: it owns the driver table, the device's primary context (made
// current on the opening thread) and one non-blocking stream on which all
// work of a step is queued. Memory comes back as RAII buffers; every driver
// call's result is checked and becomes a Status naming the call.
//
// Lifetime: buffers, events and modules refer to their Device and must be
// destroyed before it. Use a Device from the thread that opened it.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_EXEC_DEVICE_H
#define DSV3_RUNTIME_EXEC_DEVICE_H

#include "runtime/exec/Driver.h"
#include "runtime/plan/PlanFile.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace dsv3::exec {

class Device;

/// Device memory, freed on destruction. Empty (address 0) when default
/// constructed or of size 0.
class DeviceBuffer {
public:
  DeviceBuffer() = default;
  DeviceBuffer(DeviceBuffer &&other) noexcept;
  DeviceBuffer &operator=(DeviceBuffer &&other) noexcept;
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
  ~DeviceBuffer();

  CUdeviceptr address() const { return address_; }
  uint64_t size() const { return size_; }

private:
  friend class Device;
  void release();

  const Device *device_ = nullptr;
  CUdeviceptr address_ = 0;
  uint64_t size_ = 0;
};

/// Page-locked host memory (DMA without a bounce buffer), freed on
/// destruction.
class PinnedBuffer {
public:
  PinnedBuffer() = default;
  PinnedBuffer(PinnedBuffer &&other) noexcept;
  PinnedBuffer &operator=(PinnedBuffer &&other) noexcept;
  PinnedBuffer(const PinnedBuffer &) = delete;
  PinnedBuffer &operator=(const PinnedBuffer &) = delete;
  ~PinnedBuffer();

  uint8_t *data() const { return data_; }
  uint64_t size() const { return size_; }

private:
  friend class Device;
  void release();

  const Device *device_ = nullptr;
  uint8_t *data_ = nullptr;
  uint64_t size_ = 0;
};

/// A CUDA event: for waiting on queued work, and with timing enabled
/// (Device::createEvent(true)) for measuring it.
class DeviceEvent {
public:
  DeviceEvent() = default;
  DeviceEvent(DeviceEvent &&other) noexcept;
  DeviceEvent &operator=(DeviceEvent &&other) noexcept;
  DeviceEvent(const DeviceEvent &) = delete;
  DeviceEvent &operator=(const DeviceEvent &) = delete;
  ~DeviceEvent();

  CUevent handle() const { return event_; }

private:
  friend class Device;
  void release();

  const Device *device_ = nullptr;
  CUevent event_ = nullptr;
};

class Device {
public:
  /// Loads the driver and opens GPU `ordinal` (as CUDA numbers them, after
  /// CUDA_VISIBLE_DEVICES): retains its primary context, makes it current
  /// and creates the stream.
  static StatusOr<std::unique_ptr<Device>> open(int ordinal);
  ~Device();
  Device(const Device &) = delete;
  Device &operator=(const Device &) = delete;

  /// Name, compute capability, SM count and memory (free as of this call).
  StatusOr<plan::DeviceInfo> queryInfo() const;
  int ordinal() const { return ordinal_; }

  const DriverApi &api() const { return driver_->api(); }
  /// Success, or "CALL: CUDA_ERROR_... (description)".
  Status check(CUresult result, std::string_view call) const {
    return driver_->check(result, call);
  }
  /// The stream all work is queued on.
  CUstream stream() const { return stream_; }
  /// Makes the device's context current on the calling thread. A CUDA
  /// context is current per thread: open() makes it current on its own; any
  /// other thread that queues work (a server's stepping thread) calls this
  /// first, or the driver answers CUDA_ERROR_INVALID_CONTEXT.
  Status makeCurrent() const;

  /// `bytes` of device memory; `what` names the use in the error message.
  StatusOr<DeviceBuffer> allocate(uint64_t bytes, std::string_view what) const;
  StatusOr<PinnedBuffer> allocatePinned(uint64_t bytes,
                                        std::string_view what) const;
  /// An event; `timing` enables cuEventElapsedTime on it (at some cost to
  /// recording, so only where something is measured).
  StatusOr<DeviceEvent> createEvent(bool timing = false) const;

  /// Queues a copy on the stream. From pageable host memory the call returns
  /// once `source` has been read, so the caller may reuse it at once.
  Status copyToDevice(CUdeviceptr target, const void *source,
                      uint64_t bytes) const;
  /// Queues a copy on the stream; `target` is valid after synchronize().
  Status copyToHost(void *target, CUdeviceptr source, uint64_t bytes) const;
  /// Queues a byte fill on the stream.
  Status fill(CUdeviceptr target, uint8_t value, uint64_t bytes) const;
  /// Waits for everything queued on the stream; `after` names the work in
  /// the error (asynchronous kernel faults surface here).
  Status synchronize(std::string_view after) const;

private:
  Device() = default;

  std::unique_ptr<CudaDriver> driver_;
  int ordinal_ = 0;
  CUdevice device_ = 0;
  CUcontext context_ = nullptr;
  CUstream stream_ = nullptr;
};

} // namespace dsv3::exec

#endif // DSV3_RUNTIME_EXEC_DEVICE_H
