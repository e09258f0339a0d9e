//===- dsv3c.cpp - the DeepSeek-V3 model compiler -------------------------===//
//
// dsv3c CONFIG [-o FILE] [--emit=summary|mlir|weights|kernels|cuda|plan]
//       [--target=ARCH] [--weight-dtype=config|bf16|fp8]
//       [--activation-dtype=bf16|fp8] [--max-tokens=N] [--max-sequences=N]
//
// Reads a Hugging Face config.json (or a DeepSeek inference config), builds
// and verifies the dsv3 module, and writes what --emit asks for. Output goes
// to a temporary file renamed over FILE only when everything succeeded, so a
// failed run never leaves a partial or clobbered output.
//
//===----------------------------------------------------------------------===//

#include "compiler/Compiler.h"
#include "compiler/ModelSummary.h"
#include "compiler/PlanWriter.h"
#include "targets/cuda/CodeGen.h"
#include "targets/cuda/NvrtcCompiler.h"
#include "targets/cuda/CudaArch.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;

namespace {
enum class EmitKind { Summary, Mlir, Weights, Kernels, Cuda, Plan };

cl::OptionCategory dsv3cCategory("dsv3c options");

cl::opt<std::string> configPath(cl::Positional, cl::Required,
                                cl::desc("<config.json>"),
                                cl::cat(dsv3cCategory));

cl::opt<std::string>
    outputPath("o", cl::init("-"), cl::value_desc("file"),
               cl::desc("Write the output to <file> instead of standard "
                        "output; on failure <file> is left untouched"),
               cl::cat(dsv3cCategory));

cl::opt<EmitKind> emitKind(
    "emit", cl::init(EmitKind::Summary), cl::desc("What to write:"),
    cl::values(
        clEnumValN(EmitKind::Summary, "summary",
                   "layers, experts, weights and parameter count (default)"),
        clEnumValN(EmitKind::Mlir, "mlir",
                   "the verified graph-level dsv3 module"),
        clEnumValN(EmitKind::Weights, "weights",
                   "every checkpoint tensor the model reads: name, dtype, "
                   "shape"),
        clEnumValN(EmitKind::Kernels, "kernels",
                   "the module lowered to memory-planned kernel ops"),
        clEnumValN(EmitKind::Cuda, "cuda",
                   "the CUDA translation unit and the kernel instances it "
                   "compiles"),
        clEnumValN(EmitKind::Plan, "plan",
                   "the plan dsv3-run executes (needs -o; dump it with "
                   "dsv3-plan dump)")),
    cl::cat(dsv3cCategory));

cl::opt<dsv3::WeightFormat> weightFormat(
    "weight-dtype", cl::init(dsv3::WeightFormat::FromConfig),
    cl::desc("Checkpoint weight format to compile for:"),
    cl::values(clEnumValN(dsv3::WeightFormat::FromConfig, "config",
                          "as the config's quantization_config says "
                          "(default)"),
               clEnumValN(dsv3::WeightFormat::Bf16, "bf16",
                          "BF16 weights, no scales (DeepSeek's "
                          "fp8_cast_bf16 output)"),
               clEnumValN(dsv3::WeightFormat::Fp8, "fp8",
                          "FP8 weights with block scales (128x128 unless "
                          "the config says otherwise)")),
    cl::cat(dsv3cCategory));

enum class ActivationDtype { Bf16, Fp8 };
cl::opt<ActivationDtype> activationDtype(
    "activation-dtype", cl::init(ActivationDtype::Bf16),
    cl::desc("Activations of GEMMs with FP8 weights:"),
    cl::values(clEnumValN(ActivationDtype::Bf16, "bf16",
                          "bf16, the FP8 weight dequantized inside the GEMM "
                          "(default; DeepSeek's demo default)"),
               clEnumValN(ActivationDtype::Fp8, "fp8",
                          "quantized to FP8 per token and 128 channels "
                          "(DeepSeek's training recipe; less accurate)")),
    cl::cat(dsv3cCategory));

using PrefillAttention = dsv3::CompileOptions::PrefillAttention;
cl::opt<PrefillAttention> prefillAttention(
    "prefill-attention", cl::init(PrefillAttention::Auto),
    cl::desc("Attention of prefill steps that start every sequence at "
             "position 0:"),
    cl::values(clEnumValN(PrefillAttention::Auto, "auto",
                          "direct with --activation-dtype=fp8, absorbed "
                          "with bf16 activations (default)"),
               clEnumValN(PrefillAttention::Direct, "direct",
                          "per-head keys and values expanded by kv_b: "
                          "fewer FLOPs, one more bf16 rounding"),
               clEnumValN(PrefillAttention::Absorbed, "absorbed",
                          "on the latent cache, as decode and chunked "
                          "prefill always attend")),
    cl::cat(dsv3cCategory));

cl::opt<int64_t> maxTokens("max-tokens", cl::init(8192), cl::value_desc("n"),
                           cl::desc("Most tokens one step may carry: the "
                                    "prefill chunk (default 8192)"),
                           cl::cat(dsv3cCategory));

cl::opt<int64_t> maxSequences("max-sequences", cl::init(256),
                              cl::value_desc("n"),
                              cl::desc("Most sequences one step may carry "
                                       "(default 256)"),
                              cl::cat(dsv3cCategory));

enum class CublasLtUse { Auto, Off };
cl::opt<CublasLtUse> cublasLt(
    "cublaslt", cl::init(CublasLtUse::Auto),
    cl::desc("Dense FP8 x FP8 GEMMs on cuBLASLt's block-scaled GEMM (plan "
             "Gemm steps; dsv3-run then loads libcublasLt.so.13):"),
    cl::values(clEnumValN(CublasLtUse::Auto, "auto",
                          "for the shapes and row counts where the target's "
                          "tuning table measured it faster than the plan's "
                          "kernels (default)"),
               clEnumValN(CublasLtUse::Off, "off",
                          "never: every GEMM runs the plan's own kernels")),
    cl::cat(dsv3cCategory));

cl::opt<int64_t> cublasLtMinRows(
    "cublaslt-min-rows", cl::init(0), cl::value_desc("n"),
    cl::desc("With --cublaslt=auto, from n rows every FP8 x FP8 GEMM that "
             "cuBLASLt can take runs there, whatever the tuning table says "
             "(to test the library path on small models; default 0: the "
             "table)"),
    cl::cat(dsv3cCategory));

cl::opt<bool> timeline(
    "timeline", cl::init(false),
    cl::desc("Instrument the kernels: each records when it starts (after its "
             "predecessor), for dsv3-bench --timeline; costs an atomic per "
             "kernel, for diagnosis only"),
    cl::cat(dsv3cCategory));

cl::opt<std::string> target("target", cl::init("sm_90a"),
                            cl::value_desc("arch"),
                            cl::desc("GPU architecture to compile for"),
                            cl::cat(dsv3cCategory));
} // namespace

static int fail(const Twine &message) {
  WithColor::error(errs(), "dsv3c") << message << "\n";
  return 1;
}

/// Writes what `print` produces to outputPath, through a temporary file in the
/// same directory that replaces the destination only once it is complete.
static int writeOutput(function_ref<void(raw_ostream &)> print) {
  if (outputPath == "-") {
    print(outs());
    outs().flush();
    return outs().has_error() ? fail("cannot write to standard output") : 0;
  }
  Expected<sys::fs::TempFile> temp =
      sys::fs::TempFile::create(outputPath + ".tmp-%%%%%%");
  if (!temp)
    return fail(outputPath + ": cannot create: " + toString(temp.takeError()));
  {
    raw_fd_ostream os(temp->FD, /*shouldClose=*/false);
    print(os);
    os.flush();
    if (os.has_error()) {
      std::string reason = os.error().message();
      os.clear_error();
      consumeError(temp->discard());
      return fail(outputPath + ": cannot write: " + reason);
    }
  }
  if (Error error = temp->keep(outputPath))
    return fail(outputPath + ": cannot write: " + toString(std::move(error)));
  return 0;
}

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  // cl keeps a StringRef to the description, so it must outlive parsing.
  static const std::string targetHelp = "GPU architecture to compile for: " +
                                        dsv3::supportedCudaArchList() +
                                        " (default sm_90a)";
  target.setDescription(targetHelp);
  cl::HideUnrelatedOptions(dsv3cCategory);
  cl::SetVersionPrinter(
      [](raw_ostream &os) { os << "dsv3c 0.1 (LLVM/MLIR 19)\n"; });
  cl::ParseCommandLineOptions(
      argc, argv,
      "dsv3c: compiles a DeepSeek-V3-family model configuration (Hugging Face "
      "config.json or DeepSeek inference config) into a dsv3 module\n");

  Expected<dsv3::ModelConfig> config = dsv3::readModelConfigFile(configPath);
  if (!config)
    return fail(toString(config.takeError()));

  mlir::DialectRegistry registry;
  dsv3::registerDsv3Dialects(registry);
  mlir::MLIRContext context(registry);
  dsv3::CompileOptions options;
  options.target = target;
  options.weights = weightFormat;
  options.quantizeActivations = activationDtype == ActivationDtype::Fp8;
  options.prefillAttention = prefillAttention;
  options.maxTokens = maxTokens;
  options.maxSequences = maxSequences;
  if (emitKind == EmitKind::Plan && outputPath == "-")
    return fail("--emit=plan writes a binary file: name it with -o");
  auto module = dsv3::compileModelConfig(context, *config, options);
  if (!module)
    return fail(toString(module.takeError()));

  bool lower = emitKind == EmitKind::Kernels || emitKind == EmitKind::Cuda ||
               emitKind == EmitKind::Plan;
  if (lower && failed(dsv3::lowerToKernelOps(**module, options)))
    return fail(config->sourceName + ": lowering to kernel ops failed");
  std::optional<dsv3::CudaProgram> program;
  if (emitKind == EmitKind::Cuda || emitKind == EmitKind::Plan) {
    dsv3::CodeGenOptions codegen;
    codegen.pageSize = dsv3::kKvCachePageSize;
    codegen.vocabSize = config->vocabSize;
    codegen.maxTokens = options.maxTokens;
    codegen.maxSequences = options.maxSequences;
    codegen.libraryGemms = cublasLt == CublasLtUse::Auto;
    codegen.libraryGemmMinRows = cublasLtMinRows;
    codegen.timeline = timeline;
    auto generated = dsv3::generateCudaProgram(
        **module, *dsv3::lookupCudaArch(options.target), codegen);
    if (!generated)
      return fail(toString(generated.takeError()));
    program = std::move(*generated);
  }
  std::vector<uint8_t> plan;
  if (emitKind == EmitKind::Plan) {
    const dsv3::CudaArch *arch = dsv3::lookupCudaArch(options.target);
    errs() << "dsv3c: compiling " << program->instances.size()
           << " kernel instances for " << arch->name << " with NVRTC\n";
    auto compiled =
        dsv3::compileCudaModule(program->source(), *arch, program->instances);
    if (!compiled)
      return fail(toString(compiled.takeError()));
    dsv3::PlanLimits limits;
    limits.maxTokens = options.maxTokens;
    limits.maxSequences = options.maxSequences;
    limits.pageSize = dsv3::kKvCachePageSize;
    plan = dsv3::buildPlan(*program, *compiled, *arch, *config, limits);
  }

  return writeOutput([&](raw_ostream &os) {
    switch (emitKind) {
    case EmitKind::Kernels:
      (*module)->print(os);
      os << "\n";
      break;
    case EmitKind::Cuda:
      os << program->source() << "\n// Instances (NVRTC name expressions):\n";
      for (const std::string &instance : program->instances)
        os << "//   " << instance << "\n";
      break;
    case EmitKind::Plan:
      os.write(reinterpret_cast<const char *>(plan.data()), plan.size());
      break;
    case EmitKind::Summary:
      dsv3::printModuleSummary(**module, os);
      break;
    case EmitKind::Mlir:
      (*module)->print(os);
      os << "\n";
      break;
    case EmitKind::Weights:
      dsv3::printCheckpointTensors(**module, os);
      break;
    }
  });
}
