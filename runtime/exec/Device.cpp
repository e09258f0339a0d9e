//===- Device.cpp - one GPU: context, stream, memory ----------------------===//

#include "runtime/exec/Device.h"

#include <cstdio>
#include <utility>

namespace dsv3::exec {

namespace {
/// Destructors cannot return a Status: a failed release is reported on
/// stderr (it means the context is already broken, e.g. after a kernel fault).
void reportReleaseFailure(const Status &status) {
  if (!status.ok())
    std::fprintf(stderr, "dsv3: warning: %s\n", status.message().c_str());
}
} // namespace

//===----------------------------------------------------------------------===//
// Buffers
//===----------------------------------------------------------------------===//

DeviceBuffer::DeviceBuffer(DeviceBuffer &&other) noexcept
    : device_(std::exchange(other.device_, nullptr)),
      address_(std::exchange(other.address_, 0)),
      size_(std::exchange(other.size_, 0)) {}

DeviceBuffer &DeviceBuffer::operator=(DeviceBuffer &&other) noexcept {
  if (this != &other) {
    release();
    device_ = std::exchange(other.device_, nullptr);
    address_ = std::exchange(other.address_, 0);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() { release(); }

void DeviceBuffer::release() {
  if (device_ && address_)
    reportReleaseFailure(
        device_->check(device_->api().memFree(address_), "cuMemFree"));
  device_ = nullptr;
  address_ = 0;
  size_ = 0;
}

PinnedBuffer::PinnedBuffer(PinnedBuffer &&other) noexcept
    : device_(std::exchange(other.device_, nullptr)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

PinnedBuffer &PinnedBuffer::operator=(PinnedBuffer &&other) noexcept {
  if (this != &other) {
    release();
    device_ = std::exchange(other.device_, nullptr);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

PinnedBuffer::~PinnedBuffer() { release(); }

void PinnedBuffer::release() {
  if (device_ && data_)
    reportReleaseFailure(
        device_->check(device_->api().memFreeHost(data_), "cuMemFreeHost"));
  device_ = nullptr;
  data_ = nullptr;
  size_ = 0;
}

DeviceEvent::DeviceEvent(DeviceEvent &&other) noexcept
    : device_(std::exchange(other.device_, nullptr)),
      event_(std::exchange(other.event_, nullptr)) {}

DeviceEvent &DeviceEvent::operator=(DeviceEvent &&other) noexcept {
  if (this != &other) {
    release();
    device_ = std::exchange(other.device_, nullptr);
    event_ = std::exchange(other.event_, nullptr);
  }
  return *this;
}

DeviceEvent::~DeviceEvent() { release(); }

void DeviceEvent::release() {
  if (device_ && event_)
    reportReleaseFailure(
        device_->check(device_->api().eventDestroy(event_), "cuEventDestroy"));
  device_ = nullptr;
  event_ = nullptr;
}

//===----------------------------------------------------------------------===//
// Device
//===----------------------------------------------------------------------===//

StatusOr<std::unique_ptr<Device>> Device::open(int ordinal) {
  std::unique_ptr<Device> device(new Device());
  DSV3_ASSIGN_OR_RETURN(device->driver_, CudaDriver::load());
  const DriverApi &api = device->api();
  int count = 0;
  DSV3_RETURN_IF_ERROR(
      device->check(api.deviceGetCount(&count), "cuDeviceGetCount"));
  if (ordinal < 0 || ordinal >= count)
    return Status::error("GPU {} does not exist: CUDA sees {} GPU{}", ordinal,
                         count, count == 1 ? "" : "s");
  device->ordinal_ = ordinal;
  DSV3_RETURN_IF_ERROR(device->check(api.deviceGet(&device->device_, ordinal),
                                     "cuDeviceGet"));
  DSV3_RETURN_IF_ERROR(device->check(
      api.devicePrimaryCtxRetain(&device->context_, device->device_),
      "cuDevicePrimaryCtxRetain"));
  DSV3_RETURN_IF_ERROR(
      device->check(api.ctxSetCurrent(device->context_), "cuCtxSetCurrent"));
  // Non-blocking: no implicit synchronization with the legacy default stream
  // that other libraries in the process may use.
  DSV3_RETURN_IF_ERROR(device->check(
      api.streamCreate(&device->stream_, CU_STREAM_NON_BLOCKING),
      "cuStreamCreate"));
  return device;
}

Device::~Device() {
  if (!driver_)
    return;
  if (stream_)
    reportReleaseFailure(check(api().streamDestroy(stream_), "cuStreamDestroy"));
  if (context_)
    reportReleaseFailure(check(api().devicePrimaryCtxRelease(device_),
                               "cuDevicePrimaryCtxRelease"));
}

StatusOr<plan::DeviceInfo> Device::queryInfo() const {
  plan::DeviceInfo info;
  char name[256] = {};
  DSV3_RETURN_IF_ERROR(check(api().deviceGetName(name, sizeof name, device_),
                             "cuDeviceGetName"));
  info.name = name;
  DSV3_RETURN_IF_ERROR(check(
      api().deviceGetAttribute(&info.compute_major,
                               CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                               device_),
      "cuDeviceGetAttribute(compute capability major)"));
  DSV3_RETURN_IF_ERROR(check(
      api().deviceGetAttribute(&info.compute_minor,
                               CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                               device_),
      "cuDeviceGetAttribute(compute capability minor)"));
  DSV3_RETURN_IF_ERROR(check(
      api().deviceGetAttribute(&info.sm_count,
                               CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
                               device_),
      "cuDeviceGetAttribute(multiprocessor count)"));
  size_t freeBytes = 0, totalBytes = 0;
  DSV3_RETURN_IF_ERROR(
      check(api().memGetInfo(&freeBytes, &totalBytes), "cuMemGetInfo"));
  info.free_bytes = freeBytes;
  info.total_bytes = totalBytes;
  return info;
}

StatusOr<DeviceBuffer> Device::allocate(uint64_t bytes,
                                        std::string_view what) const {
  DeviceBuffer buffer;
  if (bytes == 0)
    return buffer; // cuMemAlloc rejects 0; an empty buffer has address 0
  CUdeviceptr address = 0;
  DSV3_RETURN_IF_ERROR(
      check(api().memAlloc(&address, bytes),
            fmt::format("cuMemAlloc({} bytes for {})", bytes, what)));
  buffer.device_ = this;
  buffer.address_ = address;
  buffer.size_ = bytes;
  return buffer;
}

StatusOr<PinnedBuffer> Device::allocatePinned(uint64_t bytes,
                                              std::string_view what) const {
  PinnedBuffer buffer;
  if (bytes == 0)
    return buffer;
  void *data = nullptr;
  DSV3_RETURN_IF_ERROR(
      check(api().memHostAlloc(&data, bytes, 0),
            fmt::format("cuMemHostAlloc({} bytes for {})", bytes, what)));
  buffer.device_ = this;
  buffer.data_ = static_cast<uint8_t *>(data);
  buffer.size_ = bytes;
  return buffer;
}

StatusOr<DeviceEvent> Device::createEvent(bool timing) const {
  DeviceEvent event;
  CUevent handle = nullptr;
  DSV3_RETURN_IF_ERROR(
      check(api().eventCreate(&handle, timing ? CU_EVENT_DEFAULT
                                              : CU_EVENT_DISABLE_TIMING),
            "cuEventCreate"));
  event.device_ = this;
  event.event_ = handle;
  return event;
}

Status Device::copyToDevice(CUdeviceptr target, const void *source,
                            uint64_t bytes) const {
  if (bytes == 0)
    return Status::success();
  return check(api().memcpyHtoDAsync(target, source, bytes, stream_),
               fmt::format("cuMemcpyHtoDAsync({} bytes)", bytes));
}

Status Device::copyToHost(void *target, CUdeviceptr source,
                          uint64_t bytes) const {
  if (bytes == 0)
    return Status::success();
  return check(api().memcpyDtoHAsync(target, source, bytes, stream_),
               fmt::format("cuMemcpyDtoHAsync({} bytes)", bytes));
}

Status Device::fill(CUdeviceptr target, uint8_t value, uint64_t bytes) const {
  if (bytes == 0)
    return Status::success();
  return check(api().memsetD8Async(target, value, bytes, stream_),
               fmt::format("cuMemsetD8Async({} bytes)", bytes));
}

Status Device::makeCurrent() const {
  return check(api().ctxSetCurrent(context_), "cuCtxSetCurrent");
}

Status Device::synchronize(std::string_view after) const {
  return check(api().streamSynchronize(stream_),
               fmt::format("cuStreamSynchronize after {}", after));
}

} // namespace dsv3::exec
