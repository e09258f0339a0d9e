//===- TextFile.h - reading a small file whole ---------------------*- C++ -*-===//
//
// Configuration files (config.json, model.safetensors.index.json,
// tokenizer.json) are read whole before they are parsed; large tensors are
// memory-mapped instead (Safetensors.h).
//
//===----------------------------------------------------------------------===//

#ifndef DSV3_RUNTIME_TEXTFILE_H
#define DSV3_RUNTIME_TEXTFILE_H

#include "runtime/Status.h"

#include <string>

namespace dsv3 {

/// The bytes of the file at `path`; an error names the path and the reason.
StatusOr<std::string> readTextFile(const std::string &path);

} // namespace dsv3

#endif // DSV3_RUNTIME_TEXTFILE_H
