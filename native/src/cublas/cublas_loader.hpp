// cuBLAS loaded at run time (issue 15, docs/design/cublas-baseline.md "Loading cuBLAS"): the cuBLAS strategy needs
// cublasGemmGroupedBatchedEx, which only cuBLAS 12.5 and later export, and linking cuBLAS would put a 500 MB static
// library in the package or a hard dependency on every user's machine. So the library dlopens libcublas.so.13,
// then libcublas.so.12 (the loader's search path first, then $CUDA_HOME/lib64 and /usr/local/cuda/lib64), at the
// first plan that needs it, resolves the entry points by name and checks the version.
//
// No CUDA or cuBLAS header is needed: the few types are declared here with the values of cublas_api.h and
// library_types.h (a CUDA build whose toolkit has the cuBLAS headers checks them, cublas_loader.cpp), so the
// loader builds and its failure paths are tested on the CPU CI too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moecutlass {
namespace cublas {

using Status = int;       // cublasStatus_t; 0 is CUBLAS_STATUS_SUCCESS
using Handle = void*;     // cublasHandle_t
using Stream = void*;     // cudaStream_t
using Operation = int;    // cublasOperation_t
using DataType = int;     // cudaDataType_t
using ComputeType = int;  // cublasComputeType_t

inline constexpr Status kSuccess = 0;
inline constexpr Operation kOpN = 0;
inline constexpr Operation kOpT = 1;
inline constexpr DataType kR16BF = 14;  // the only operand and result type the plan uses
inline constexpr ComputeType kCompute32F = 68;
using GemmAlgorithm = int;  // cublasGemmAlgo_t
inline constexpr GemmAlgorithm kGemmDefault = -1;

// The oldest cuBLAS with cublasGemmGroupedBatchedEx, as major * 10000 + minor * 100 + patch.
inline constexpr int kMinimumVersion = 120500;

struct Api {
  std::string path;  // what dlopen loaded
  int version = 0;   // major * 10000 + minor * 100 + patch
  Status (*create)(Handle*) = nullptr;
  Status (*destroy)(Handle) = nullptr;
  Status (*set_stream)(Handle, Stream) = nullptr;
  Status (*set_workspace)(Handle, void*, size_t) = nullptr;
  const char* (*status_string)(Status) = nullptr;
  // cublasGemmGroupedBatchedEx: per group (here one expert each, group_size 1) op, m, n, k, alpha, lda, ldb, beta
  // and ldc are host arrays; the A, B and C pointer arrays are device arrays.
  Status (*gemm_grouped_batched_ex)(Handle, const Operation* transa, const Operation* transb, const int* m,
                                    const int* n, const int* k, const void* alpha, const void* const* a,
                                    DataType a_type, const int* lda, const void* const* b, DataType b_type,
                                    const int* ldb, const void* beta, void* const* c, DataType c_type,
                                    const int* ldc, int group_count, const int* group_size,
                                    ComputeType compute_type) = nullptr;
  // cublasGemmEx: one GEMM, every argument on the host; the plan's other call shape (a loop over the groups).
  Status (*gemm_ex)(Handle, Operation transa, Operation transb, int m, int n, int k, const void* alpha, const void* a,
                    DataType a_type, int lda, const void* b, DataType b_type, int ldb, const void* beta, void* c,
                    DataType c_type, int ldc, ComputeType compute_type, GemmAlgorithm algorithm) = nullptr;
};

// The candidates in search order: each name as given (the dynamic loader's search), then under $CUDA_HOME/lib64 and
// /usr/local/cuda/lib64.
std::vector<std::string> default_candidates();

// Loads the first candidate that opens and resolves; on failure returns false and `error` says, for every
// candidate, why it was not taken (not found, a missing entry point, a version below 12.5). Never throws.
bool try_load(const std::vector<std::string>& candidates, Api& api, std::string& error);

// The process-wide cuBLAS, loaded once (thread-safe) from default_candidates(); throws Error with
// MC_STATUS_UNSUPPORTED and try_load's explanation when none can be used (every later call throws the same).
const Api& api();

}  // namespace cublas
}  // namespace moecutlass
