//===- PlanDump.h - a plan as readable, line-oriented text ---------*- C++ -*-===//
//
// `dsv3-plan dump` prints this, and lit tests check it with FileCheck, so the
// format is stable: one item per line (a weight, a constant, a module, a
// kernel, an output, a launch, a cuBLASLt GEMM), sizes as expressions of the
// step's sizes
//   T  tokens in the step       B  sequences in the step
//   P  pages per sequence (the block table's width)
// e.g. a grid `(ceil(T/64), 4, 1)` and arguments `arena+1048576`, `weight#12`,
// `input:tokens`, `kv_cache[3]`, `null`, `int T`, `int 8*T`, `float 1e-06`,
// and tensor maps with their element type, extents and box (innermost first)
// and swizzle span: `map(weight#12 F8_E4M3 [7168, 18432] box [128, 128]
// swizzle 128)`, `map(arena+0 BF16 [7168, T] box [64, 256] swizzle 128)`.
// A Gemm step reads
//   step#12 dsv3.fp8_gemm cublasLt fp8 gemm n 7168 k 2048 F32 rows T align 16
//   args (arena+0, arena+65536, weight#40, weight#41, arena+131072)
// (one line), with the same ` when ...` suffix as a launch.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_PLAN_PLANDUMP_H
#define DSV3_RUNTIME_PLAN_PLANDUMP_H

#include "runtime/plan/Plan_generated.h"

#include <string>

namespace dsv3::plan {

/// The whole plan (verified by verifyPlan) as text, ending in a newline.
std::string dumpPlan(const Plan &plan);

/// "T", "B", "P", or "" for SizeUnit::Constant.
const char *sizeUnitSymbol(SizeUnit unit);
/// "tokens", "positions", "token_seq", "block_table", "last_rows", "hidden".
const char *stepInputName(StepInput input);
/// multiplier x size: "T", "8*T", "576", "0".
std::string formatSize(SizeUnit unit, int64_t multiplier);
/// A list of sizes: "[7168, 8*T]" ("[]" when absent).
std::string formatSizes(const flatbuffers::Vector<const Size *> *sizes);
/// A grid dimension: "ceil(T/64)", "4*B+1", "T", "4" (constants evaluated).
std::string formatLaunchDim(const LaunchDim &dim);
/// One launch argument: "arena+4096", "weight#3", "input:tokens", "int 8*T",
/// "map(arena+0 BF16 [7168, T] box [64, 256] swizzle 128)".
std::string formatArg(const Arg &arg);

} // namespace dsv3::plan

#endif // DSV3_RUNTIME_PLAN_PLANDUMP_H
