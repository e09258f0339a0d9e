//===- RunOptions.h - dsv3-run's command line -------------------*- C++ -*-===//

#ifndef DSV3_TOOLS_DSV3_RUN_RUNOPTIONS_H
#define DSV3_TOOLS_DSV3_RUN_RUNOPTIONS_H

#include "runtime/Status.h"
#include "runtime/sample/SamplingParams.h"

#include <cstdint>
#include <string>
#include <vector>

namespace dsv3::run {

extern const char kUsage[];

/// Where the prompts come from: exactly one per run.
enum class InputMode { None, PromptIds, Prompts, InputFile, Interactive, Serve };

struct RunOptions {
  std::string planPath, checkpointDir;
  InputMode mode = InputMode::None;
  std::vector<std::vector<int32_t>> promptIds; ///< --prompt-ids
  std::vector<std::string> prompts;            ///< --prompt
  std::string inputFile;                       ///< --input-file

  std::string tokenizerDir; ///< --tokenizer; empty: the checkpoint directory
  std::string system;       ///< --system
  bool hasSystem = false;
  bool raw = false; ///< --raw: no chat template
  std::vector<std::string> stopStrings;
  bool ignoreEos = false;

  int64_t maxNewTokens = 256;
  /// temperature, top_p, top_k, min_p, penalties and seed as given; the
  /// per-sequence fields are set later.
  sample::SamplingParams sampling;

  int64_t kvPages = 0; ///< 0: as needed
  std::string logitsOut, teacherForce;
  int device = 0;
  bool syncEachLaunch = false;
  bool cudaGraphs = true;
  bool dependentLaunches = true;

  // --serve (requests come over HTTP; see docs/serving.md).
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string apiKey;
  std::string modelName; ///< empty: CHECKPOINT_DIR's last component

  bool textMode() const {
    return mode == InputMode::Prompts || mode == InputMode::InputFile ||
           mode == InputMode::Interactive || mode == InputMode::Serve;
  }
  /// --logits-out and --teacher-force need every sequence in lockstep.
  bool lockstep() const { return !logitsOut.empty() || !teacherForce.empty(); }
};

/// Parses argv; `help` is set for --help (nothing else is then checked).
Status parseRunOptions(int argc, char **argv, RunOptions &options, bool &help);

} // namespace dsv3::run

#endif // DSV3_TOOLS_DSV3_RUN_RUNOPTIONS_H
