//===- Dequantize.h - FP8 block-scaled weights to bf16, on the host -*- C++ -*-===//
//
// Some weights are read by kernels in bf16 although the checkpoint stores
// them in FP8 (kv_b_proj, which the absorbed MLA kernels multiply in bf16).
// The loader converts them once, on the host: value = e4m3(code) x scale of
// its block, computed in fp32 and rounded to nearest even bf16 — what
// `(weight.float() * scale).bfloat16()` gives in PyTorch.
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_EXEC_DEQUANTIZE_H
#define DSV3_RUNTIME_EXEC_DEQUANTIZE_H

#include <cstdint>

namespace dsv3::exec {

/// float8_e4m3fn (1 sign bit, 4 exponent bits biased by 7, 3 mantissa bits;
/// no infinities; 0x7F and 0xFF are NaN) as float, by table lookup.
float e4m3ToFloat(uint8_t code);

/// float to bfloat16 bits, rounding to nearest even; NaN stays a (quiet)
/// NaN of the same sign, overflow becomes infinity.
uint16_t floatToBf16(float value);

/// Dequantizes `values` [rows, cols] (e4m3 codes, row-major) with `scales`
/// [ceil(rows / blockRows), ceil(cols / blockCols)] (fp32, row-major; the
/// blocks on the last row and column may be partial) into `out` [rows, cols]
/// bf16. Splits the rows over `threads` threads (0: one per hardware thread).
void dequantizeFp8ToBf16(const uint8_t *values, const float *scales,
                         int64_t rows, int64_t cols, int64_t blockRows,
                         int64_t blockCols, uint16_t *out, unsigned threads);

} // namespace dsv3::exec

#endif // DSV3_RUNTIME_EXEC_DEQUANTIZE_H
