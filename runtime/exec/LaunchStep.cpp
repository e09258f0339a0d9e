//===- LaunchStep.cpp - the Launch step: a kernel on the stream -----------===//

#include "runtime/exec/LaunchStep.h"

#include "runtime/plan/PlanDump.h"

#include <limits>

namespace dsv3::exec {

using plan::SizeUnit;

int64_t sizeValue(SizeUnit unit, const StepSizes &sizes) {
  switch (unit) {
  case SizeUnit::Constant:
    return 1;
  case SizeUnit::Tokens:
    return sizes.tokens;
  case SizeUnit::Sequences:
    return sizes.sequences;
  case SizeUnit::PagesPerSequence:
    return sizes.pagesPerSequence;
  case SizeUnit::ResumedRuns:
    return sizes.resumedRuns;
  }
  return 0;
}

int64_t countResumedRuns(const std::vector<int32_t> &positions,
                         const std::vector<int32_t> &tokenSeq) {
  int64_t resumed = 0;
  for (size_t t = 0; t < positions.size(); ++t) {
    const bool continuesRun = t > 0 && t < tokenSeq.size() &&
                              tokenSeq[t] == tokenSeq[t - 1] &&
                              positions[t] == positions[t - 1] + 1;
    if (!continuesRun && positions[t] != 0)
      ++resumed;
  }
  return resumed;
}

StatusOr<int32_t> resolveInt(SizeUnit unit, int64_t multiplier,
                             const StepSizes &sizes) {
  int64_t value;
  if (__builtin_mul_overflow(multiplier, sizeValue(unit, sizes), &value) ||
      value < std::numeric_limits<int32_t>::min() ||
      value > std::numeric_limits<int32_t>::max())
    return Status::error("int {} does not fit in 32 bits at T={}, B={}, P={}",
                         plan::formatSize(unit, multiplier), sizes.tokens,
                         sizes.sequences, sizes.pagesPerSequence);
  return static_cast<int32_t>(value);
}

StatusOr<int64_t> resolveLaunchDim(const plan::LaunchDim &dim,
                                   const StepSizes &sizes) {
  int64_t numerator, value;
  if (__builtin_mul_overflow(dim.multiplier(), sizeValue(dim.unit(), sizes),
                             &numerator))
    return Status::error("grid dimension {} overflows at T={}, B={}, P={}",
                         plan::formatLaunchDim(dim), sizes.tokens,
                         sizes.sequences, sizes.pagesPerSequence);
  // Ceiling division that also rounds negative numerators up (towards +inf).
  const int64_t divisor = dim.divisor();
  int64_t quotient = numerator / divisor;
  if (numerator % divisor != 0 && (numerator > 0) == (divisor > 0))
    ++quotient;
  if (__builtin_add_overflow(quotient, dim.offset(), &value))
    return Status::error("grid dimension {} overflows at T={}, B={}, P={}",
                         plan::formatLaunchDim(dim), sizes.tokens,
                         sizes.sequences, sizes.pagesPerSequence);
  return value;
}

StatusOr<CUdeviceptr> resolveBufferAddress(const plan::Arg &arg,
                                           const BufferAddresses &addresses,
                                           std::string_view where,
                                           std::string_view argName) {
  const int64_t index = arg.index();
  // The plan was verified against itself; these guard against an executor
  // that built fewer buffers than the plan names.
  auto pick = [&](const auto &table,
                  const char *what) -> StatusOr<CUdeviceptr> {
    if (index < 0 || static_cast<uint64_t>(index) >= table.size())
      return Status::error("{}: {}: no device buffer for {} {}", where,
                           argName, what, index);
    return table[index];
  };
  switch (arg.space()) {
  case plan::Space::Arena:
    return addresses.arena + static_cast<CUdeviceptr>(index);
  case plan::Space::Weight:
    return pick(addresses.weights, "weight");
  case plan::Space::Constant:
    return pick(addresses.constants, "constant");
  case plan::Space::Input: {
    DSV3_ASSIGN_OR_RETURN(CUdeviceptr pointer, pick(addresses.inputs, "input"));
    if (pointer == 0)
      return Status::error(
          "{}: {}: no buffer for input '{}'", where, argName,
          plan::stepInputName(static_cast<plan::StepInput>(index)));
    return pointer;
  }
  case plan::Space::KvCache:
    return pick(addresses.kvCacheLayers, "KV-cache layer");
  case plan::Space::Null:
    break;
  }
  return CUdeviceptr{0};
}

StatusOr<PreparedLaunch> prepareLaunch(const plan::Launch &launch,
                                       const BufferAddresses &addresses,
                                       std::string where) {
  PreparedLaunch prepared;
  prepared.where = std::move(where);
  prepared.kernel = launch.kernel();
  for (int d = 0; d < 3; ++d) {
    prepared.grid[d] = *launch.grid()->Get(d);
    prepared.block[d] = static_cast<unsigned>(launch.block()->Get(d));
  }
  prepared.sharedBytes = launch.shared_bytes();
  if (launch.when())
    prepared.when = *launch.when();
  if (launch.also_when())
    prepared.alsoWhen = *launch.also_when();
  const size_t argCount = launch.args() ? launch.args()->size() : 0;
  for (size_t a = 0; a < argCount; ++a) {
    const plan::Arg &arg = *launch.args()->Get(a);
    PreparedArg out;
    switch (arg.kind()) {
    case plan::ArgKind::Buffer: {
      out.kind = PreparedArg::Kind::Pointer;
      DSV3_ASSIGN_OR_RETURN(out.fixed.pointer,
                            resolveBufferAddress(arg, addresses, prepared.where,
                                                 fmt::format("arg {}", a)));
      break;
    }
    case plan::ArgKind::TensorMap: {
      out.kind = PreparedArg::Kind::TensorMap;
      DSV3_ASSIGN_OR_RETURN(out.fixed.pointer,
                            resolveBufferAddress(arg, addresses, prepared.where,
                                                 fmt::format("arg {}", a)));
      // Verified: present, rank 1..5, as many box extents as dims.
      const plan::TensorMapArg &map = *arg.tensor_map();
      out.map.dtype = map.dtype();
      out.map.rank = map.dims()->size();
      for (size_t i = 0; i < out.map.rank; ++i) {
        out.map.dims[i] = *map.dims()->Get(i);
        out.map.box[i] = map.box()->Get(i);
      }
      out.map.swizzleBytes = map.swizzle_bytes();
      break;
    }
    case plan::ArgKind::Int:
      out.kind = PreparedArg::Kind::Int;
      out.unit = arg.size()->unit();
      out.multiplier = arg.size()->multiplier();
      break;
    case plan::ArgKind::Float:
      out.kind = PreparedArg::Kind::Float;
      out.fixed.real = static_cast<float>(arg.value());
      break;
    }
    prepared.args.push_back(out);
  }
  return prepared;
}

namespace {

CUtensorMapDataType tensorMapDataType(plan::DType dtype) {
  switch (dtype) {
  case plan::DType::BF16:
    return CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  case plan::DType::F16:
    return CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  case plan::DType::F32:
    return CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
  case plan::DType::I32:
    return CU_TENSOR_MAP_DATA_TYPE_INT32;
  case plan::DType::F8_E4M3:
    // TMA only moves bytes; the kernel reads them as e4m3.
    return CU_TENSOR_MAP_DATA_TYPE_UINT8;
  }
  return CU_TENSOR_MAP_DATA_TYPE_UINT8;
}

CUtensorMapSwizzle tensorMapSwizzle(uint32_t bytes) {
  switch (bytes) {
  case 32:
    return CU_TENSOR_MAP_SWIZZLE_32B;
  case 64:
    return CU_TENSOR_MAP_SWIZZLE_64B;
  case 128:
    return CU_TENSOR_MAP_SWIZZLE_128B;
  default: // 0, as verified
    return CU_TENSOR_MAP_SWIZZLE_NONE;
  }
}

template <typename T>
std::string formatList(const T *values, size_t count) {
  std::string text = "[";
  for (size_t i = 0; i < count; ++i)
    text += (i ? ", " : "") + std::to_string(values[i]);
  return text + "]";
}

/// Encodes argument `a` of `launch`, a TensorMap, for `sizes` into `map`.
/// Sets `empty` instead when an extent is ≤ 0, and encodes nothing once the
/// launch is known to be empty.
Status encodeTensorMap(const PreparedLaunch &launch, size_t a,
                       const StepSizes &sizes, TensorMapEncoder encode,
                       CUtensorMap &map, bool &empty) {
  const PreparedArg &arg = launch.args[a];
  const TensorMapShape &shape = arg.map;
  cuuint64_t globalDim[plan::kMaxTensorMapRank] = {};
  for (size_t i = 0; i < shape.rank; ++i) {
    int64_t extent;
    if (__builtin_mul_overflow(shape.dims[i].multiplier(),
                               sizeValue(shape.dims[i].unit(), sizes), &extent))
      return Status::error("{}: arg {}: tensor map dims[{}] = {} overflows at "
                           "T={}, B={}, P={}",
                           launch.where, a, i,
                           plan::formatSize(shape.dims[i].unit(),
                                            shape.dims[i].multiplier()),
                           sizes.tokens, sizes.sequences,
                           sizes.pagesPerSequence);
    // A tensor with no rows (or columns) gives the kernel no work; TMA
    // cannot describe it anyway (extents must be positive).
    if (extent <= 0)
      empty = true;
    globalDim[i] = static_cast<cuuint64_t>(extent);
  }
  if (empty)
    return Status::success();
  // Dense row-major: the stride of dims[i] is the bytes of one index of
  // dims[i - 1], i.e. the product of the inner extents x element size.
  cuuint64_t globalStrides[plan::kMaxTensorMapRank - 1] = {};
  cuuint64_t stride = plan::dtypeBytes(shape.dtype);
  for (size_t i = 1; i < shape.rank; ++i) {
    if (__builtin_mul_overflow(stride, globalDim[i - 1], &stride))
      return Status::error("{}: arg {}: tensor map dims {} overflow 64 bits",
                           launch.where, a, formatList(globalDim, shape.rank));
    globalStrides[i - 1] = stride;
  }
  cuuint32_t box[plan::kMaxTensorMapRank] = {};
  cuuint32_t elementStrides[plan::kMaxTensorMapRank] = {};
  for (size_t i = 0; i < shape.rank; ++i) {
    box[i] = shape.box[i];
    elementStrides[i] = 1;
  }
  if (!encode)
    return Status::error("{}: arg {}: a tensor map, but no encoder to build it",
                         launch.where, a);
  // Out-of-bounds elements read as zero (FLOAT_OOB_FILL_NONE): kernels rely
  // on it for partial tiles past the last row or column.
  const CUresult result = encode(
      &map, tensorMapDataType(shape.dtype),
      static_cast<cuuint32_t>(shape.rank),
      reinterpret_cast<void *>(static_cast<uintptr_t>(arg.fixed.pointer)),
      globalDim, globalStrides, box, elementStrides,
      CU_TENSOR_MAP_INTERLEAVE_NONE, tensorMapSwizzle(shape.swizzleBytes),
      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (result == CUDA_SUCCESS)
    return Status::success();
  return Status::error("{}: arg {}: cuTensorMapEncodeTiled failed (CUresult "
                       "{}) for the tensor map of {} {} at 0x{:x}, box {}, "
                       "swizzle {}",
                       launch.where, a, static_cast<int>(result),
                       plan::EnumNameDType(shape.dtype),
                       formatList(globalDim, shape.rank), arg.fixed.pointer,
                       formatList(box, shape.rank), shape.swizzleBytes);
}

} // namespace

bool sizeGuardsHold(const std::optional<plan::SizeRange> &when,
                    const std::optional<plan::SizeRange> &alsoWhen,
                    const StepSizes &sizes) {
  for (const std::optional<plan::SizeRange> *range : {&when, &alsoWhen}) {
    if (!*range)
      continue;
    const int64_t value =
        (*range)->multiplier() * sizeValue((*range)->unit(), sizes);
    if (value < (*range)->min() || value > (*range)->max())
      return false;
  }
  return true;
}

bool launchChosen(const PreparedLaunch &launch, const StepSizes &sizes) {
  return !launch.omitted && sizeGuardsHold(launch.when, launch.alsoWhen, sizes);
}

Status resolveLaunch(const PreparedLaunch &launch, const StepSizes &sizes,
                     ResolvedLaunch &out, TensorMapEncoder encode) {
  // CUDA's grid limits: x < 2^31, y and z ≤ 65535.
  static constexpr int64_t kMaxGrid[3] = {2147483647, 65535, 65535};
  static const char *const kAxis[3] = {"x", "y", "z"};
  out.empty = !launchChosen(launch, sizes);
  if (out.empty)
    return Status::success();
  for (int d = 0; d < 3; ++d) {
    StatusOr<int64_t> dim = resolveLaunchDim(launch.grid[d], sizes);
    if (!dim.ok())
      return dim.status().withPrefix(launch.where + ": ");
    if (*dim > kMaxGrid[d])
      return Status::error("{}: grid.{} = {} = {} exceeds CUDA's limit of {}",
                           launch.where, kAxis[d],
                           plan::formatLaunchDim(launch.grid[d]), *dim,
                           kMaxGrid[d]);
    out.grid[d] = *dim;
    out.empty |= *dim <= 0;
  }
  out.params.resize(launch.args.size());
  out.paramPointers.resize(launch.args.size());
  // Sized before any pointer into it is taken: it must not reallocate after.
  size_t mapCount = 0;
  for (const PreparedArg &arg : launch.args)
    mapCount += arg.kind == PreparedArg::Kind::TensorMap;
  out.maps.resize(mapCount);
  size_t nextMap = 0;
  for (size_t a = 0; a < launch.args.size(); ++a) {
    const PreparedArg &arg = launch.args[a];
    KernelParam &param = out.params[a];
    param.pointer = 0; // clear all 8 bytes before a 4-byte value goes in
    out.paramPointers[a] = &param;
    switch (arg.kind) {
    case PreparedArg::Kind::Pointer:
      param.pointer = arg.fixed.pointer;
      break;
    case PreparedArg::Kind::Float:
      param.real = arg.fixed.real;
      break;
    case PreparedArg::Kind::Int: {
      StatusOr<int32_t> value = resolveInt(arg.unit, arg.multiplier, sizes);
      if (!value.ok())
        return value.status().withPrefix(
            fmt::format("{}: arg {}: ", launch.where, a));
      param.integer = *value;
      break;
    }
    case PreparedArg::Kind::TensorMap: {
      CUtensorMap &map = out.maps[nextMap++];
      DSV3_RETURN_IF_ERROR(
          encodeTensorMap(launch, a, sizes, encode, map, out.empty));
      out.paramPointers[a] = &map;
      break;
    }
    }
  }
  return Status::success();
}

Status runLaunch(const Device &device, const PreparedLaunch &launch,
                 const StepSizes &sizes, ResolvedLaunch &scratch) {
  DSV3_RETURN_IF_ERROR(resolveLaunch(launch, sizes, scratch,
                                     device.api().tensorMapEncodeTiled));
  if (scratch.empty)
    return Status::success();
  CUresult result;
  if (launch.dependentLaunch) {
    CUlaunchAttribute overlap{};
    overlap.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    overlap.value.programmaticStreamSerializationAllowed = 1;
    CUlaunchConfig config{};
    config.gridDimX = static_cast<unsigned>(scratch.grid[0]);
    config.gridDimY = static_cast<unsigned>(scratch.grid[1]);
    config.gridDimZ = static_cast<unsigned>(scratch.grid[2]);
    config.blockDimX = launch.block[0];
    config.blockDimY = launch.block[1];
    config.blockDimZ = launch.block[2];
    config.sharedMemBytes = launch.sharedBytes;
    config.hStream = device.stream();
    config.attrs = &overlap;
    config.numAttrs = 1;
    result = device.api().launchKernelEx(&config, launch.function,
                                         scratch.paramPointers.data(), nullptr);
  } else {
    result = device.api().launchKernel(
        launch.function, static_cast<unsigned>(scratch.grid[0]),
        static_cast<unsigned>(scratch.grid[1]),
        static_cast<unsigned>(scratch.grid[2]), launch.block[0],
        launch.block[1], launch.block[2], launch.sharedBytes, device.stream(),
        scratch.paramPointers.data(), nullptr);
  }
  if (result == CUDA_SUCCESS) // the message is built only on failure
    return Status::success();
  return device.check(
      result, fmt::format("{}: {} grid ({}, {}, {}) block ({}, {}, "
                          "{}) shared {}",
                          launch.where,
                          launch.dependentLaunch ? "cuLaunchKernelEx (dependent)"
                                                 : "cuLaunchKernel",
                          scratch.grid[0], scratch.grid[1],
                          scratch.grid[2], launch.block[0], launch.block[1],
                          launch.block[2], launch.sharedBytes));
}

} // namespace dsv3::exec
