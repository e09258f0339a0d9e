//===- Serve.h - dsv3-run --serve -------------------------------*- C++ -*-===//

#ifndef DSV3_TOOLS_DSV3_RUN_SERVE_H
#define DSV3_TOOLS_DSV3_RUN_SERVE_H

#include "runtime/Status.h"
#include "runtime/generate/Engine.h"
#include "runtime/tokenizer/Tokenizer.h"
#include "tools/dsv3-run/RunOptions.h"

namespace dsv3::run {

/// Starts `engine` on the GPU and serves it over HTTP until the process is
/// killed (or the listener fails).
Status serve(generate::Engine &engine, const Tokenizer &tokenizer,
             const RunOptions &options);

} // namespace dsv3::run

#endif // DSV3_TOOLS_DSV3_RUN_SERVE_H
