# Finds every dependency of dsv3c. A missing one stops configure with one line that
# names the Debian package providing it (scripts/setup.sh installs them all).

function(dsv3_require found what package)
  if(NOT ${found})
    message(FATAL_ERROR "dsv3c: ${what} not found; install the Debian package '${package}' (or run scripts/setup.sh)")
  endif()
endfunction()

# LLVM/MLIR 19, linked as the shared libLLVM.so / libMLIR.so throughout (Debian's
# static MLIR archives themselves link libLLVM.so, so the static route would mix both).
find_package(MLIR 19.1 QUIET CONFIG PATHS /usr/lib/llvm-19/lib/cmake/mlir NO_DEFAULT_PATH)
dsv3_require(MLIR_FOUND "MLIR 19 (MLIRConfig.cmake)" "libmlir-19-dev")
find_package(LLVM 19.1 QUIET CONFIG PATHS /usr/lib/llvm-19/lib/cmake/llvm NO_DEFAULT_PATH)
dsv3_require(LLVM_FOUND "LLVM 19 (LLVMConfig.cmake)" "llvm-19-dev")
separate_arguments(LLVM_DEFINITIONS_LIST NATIVE_COMMAND ${LLVM_DEFINITIONS})

list(APPEND CMAKE_MODULE_PATH "${MLIR_CMAKE_DIR}" "${LLVM_CMAKE_DIR}")
include(TableGen)
include(AddLLVM)
include(AddMLIR)

find_program(DSV3_MLIR_TBLGEN mlir-tblgen PATHS /usr/lib/llvm-19/bin NO_DEFAULT_PATH)
dsv3_require(DSV3_MLIR_TBLGEN "mlir-tblgen" "libmlir-19-dev")
set(MLIR_TABLEGEN_EXE ${DSV3_MLIR_TBLGEN})

# Test tools: lit from LLVM's source tree as Debian ships it, FileCheck and not.
set(DSV3_LIT /usr/lib/llvm-19/build/utils/lit/lit.py)
if(NOT EXISTS ${DSV3_LIT})
  message(FATAL_ERROR "dsv3c: lit not found at ${DSV3_LIT}; install the Debian package 'llvm-19-tools' (or run scripts/setup.sh)")
endif()
find_program(DSV3_FILECHECK FileCheck PATHS /usr/lib/llvm-19/bin NO_DEFAULT_PATH)
dsv3_require(DSV3_FILECHECK "FileCheck" "llvm-19-tools")
find_package(Python3 COMPONENTS Interpreter QUIET)
dsv3_require(Python3_FOUND "python3 (runs lit)" "python3")

# CUDA 13 toolkit: nvcc, NVRTC, cuBLASLt, NCCL under /usr/local/cuda.
if(NOT CUDAToolkit_ROOT AND EXISTS /usr/local/cuda)
  set(CUDAToolkit_ROOT /usr/local/cuda)
endif()
find_package(CUDAToolkit QUIET)
if(NOT CUDAToolkit_FOUND)
  message(FATAL_ERROR "dsv3c: the CUDA toolkit was not found under /usr/local/cuda; install NVIDIA's cuda-toolkit-13 (nvcc, NVRTC, cuBLASLt) and NCCL")
endif()
if(NOT TARGET CUDA::nvrtc OR NOT TARGET CUDA::cublasLt)
  message(FATAL_ERROR "dsv3c: NVRTC or cuBLASLt missing from the CUDA toolkit at ${CUDAToolkit_LIBRARY_DIR}; install NVIDIA's cuda-toolkit-13")
endif()
find_library(DSV3_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib /usr/local/cuda/lib64 /usr/local/cuda/lib)
find_path(DSV3_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
if(NOT DSV3_NCCL_LIBRARY OR NOT DSV3_NCCL_INCLUDE_DIR)
  message(FATAL_ERROR "dsv3c: NCCL not found beside the CUDA toolkit; install NVIDIA's 'libnccl-dev'")
endif()

# Runtime-side libraries.
find_program(DSV3_FLATC flatc)
dsv3_require(DSV3_FLATC "flatc" "flatbuffers-compiler")
find_path(DSV3_FLATBUFFERS_INCLUDE_DIR flatbuffers/flatbuffers.h)
dsv3_require(DSV3_FLATBUFFERS_INCLUDE_DIR "flatbuffers headers" "libflatbuffers-dev")
find_package(fmt QUIET CONFIG)
dsv3_require(fmt_FOUND "fmt" "libfmt-dev")
find_package(GTest QUIET CONFIG)
if(NOT GTest_FOUND)
  find_package(GTest QUIET)
endif()
dsv3_require(GTest_FOUND "GoogleTest" "libgtest-dev")
find_package(nlohmann_json 3 QUIET CONFIG)
dsv3_require(nlohmann_json_FOUND "nlohmann-json (the runtime's JSON reader)" "nlohmann-json3-dev")
# PCRE2 (8-bit, UTF, JIT): the tokenizer's pre-tokenizer regexes.
find_package(PkgConfig QUIET)
dsv3_require(PKG_CONFIG_FOUND "pkg-config (finds PCRE2)" "pkg-config")
pkg_check_modules(PCRE2 QUIET IMPORTED_TARGET libpcre2-8)
dsv3_require(PCRE2_FOUND "PCRE2 (libpcre2-8, the tokenizer's regex engine)" "libpcre2-dev")
