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
  }
  return 0;
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
  const size_t argCount = launch.args() ? launch.args()->size() : 0;
  for (size_t a = 0; a < argCount; ++a) {
    const plan::Arg &arg = *launch.args()->Get(a);
    PreparedArg out;
    switch (arg.kind()) {
    case plan::ArgKind::Buffer: {
      out.kind = PreparedArg::Kind::Pointer;
      const int64_t index = arg.index();
      // The plan was verified against itself; these guard against an
      // executor that built fewer buffers than the plan names.
      auto pick = [&](const auto &table, const char *what) -> Status {
        if (index < 0 || static_cast<uint64_t>(index) >= table.size())
          return Status::error("{}: arg {}: no device buffer for {} {}",
                               prepared.where, a, what, index);
        out.fixed.pointer = table[index];
        return Status::success();
      };
      switch (arg.space()) {
      case plan::Space::Arena:
        out.fixed.pointer = addresses.arena + static_cast<CUdeviceptr>(index);
        break;
      case plan::Space::Weight:
        DSV3_RETURN_IF_ERROR(pick(addresses.weights, "weight"));
        break;
      case plan::Space::Constant:
        DSV3_RETURN_IF_ERROR(pick(addresses.constants, "constant"));
        break;
      case plan::Space::Input:
        DSV3_RETURN_IF_ERROR(pick(addresses.inputs, "input"));
        if (out.fixed.pointer == 0)
          return Status::error("{}: arg {}: no buffer for input '{}'",
                               prepared.where, a,
                               plan::stepInputName(
                                   static_cast<plan::StepInput>(index)));
        break;
      case plan::Space::KvCache:
        DSV3_RETURN_IF_ERROR(pick(addresses.kvCacheLayers, "KV-cache layer"));
        break;
      case plan::Space::Null:
        out.fixed.pointer = 0;
        break;
      }
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

Status resolveLaunch(const PreparedLaunch &launch, const StepSizes &sizes,
                     ResolvedLaunch &out) {
  // CUDA's grid limits: x < 2^31, y and z ≤ 65535.
  static constexpr int64_t kMaxGrid[3] = {2147483647, 65535, 65535};
  static const char *const kAxis[3] = {"x", "y", "z"};
  out.empty = false;
  if (launch.when) {
    // Another candidate kernel covers this size: nothing to launch.
    const int64_t rows = launch.when->multiplier() * sizeValue(launch.when->unit(), sizes);
    if (rows < launch.when->min() || rows > launch.when->max()) {
      out.empty = true;
      return Status::success();
    }
  }
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
  for (size_t a = 0; a < launch.args.size(); ++a) {
    const PreparedArg &arg = launch.args[a];
    KernelParam &param = out.params[a];
    param.pointer = 0; // clear all 8 bytes before a 4-byte value goes in
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
    }
    out.paramPointers[a] = &param;
  }
  return Status::success();
}

Status runLaunch(const Device &device, const PreparedLaunch &launch,
                 const StepSizes &sizes, ResolvedLaunch &scratch) {
  DSV3_RETURN_IF_ERROR(resolveLaunch(launch, sizes, scratch));
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
