// NCCL loaded at run time (issue 16, docs/design/multi-gpu.md "Build and loading"), like cuBLAS
// (cublas/cublas_loader.hpp): the library does not link NCCL, so one package runs on machines without it and only the
// parallel API reports MC_STATUS_UNSUPPORTED there. At the first call that needs it, the library dlopens
// libnccl.so.2 (the dynamic loader's search path, then $NCCL_HOME/lib, then the directory of the NCCL the library was
// configured with), resolves the entry points by name and requires NCCL 2.18 or later (ncclGetVersion).
//
// No NCCL header is needed: the few types and constants are declared here with nccl.h's values; a build that has
// the header (MOECUTLASS_NCCL=ON) checks them with static_assert (nccl_loader.cpp). So the loader builds and its
// failure paths are tested on the CPU CI too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace moecutlass {
namespace nccl {

using Result = int;       // ncclResult_t; 0 is ncclSuccess
using Comm = void*;       // ncclComm_t
using Stream = void*;     // cudaStream_t
using DataType = int;     // ncclDataType_t
using RedOp = int;        // ncclRedOp_t

inline constexpr Result kSuccess = 0;
inline constexpr DataType kUint8 = 1;    // ncclUint8: the all-gathers move bytes
inline constexpr DataType kFloat32 = 7;  // ncclFloat32: the partial sums
inline constexpr RedOp kSum = 0;         // ncclSum
inline constexpr std::size_t kUniqueIdBytes = 128;  // NCCL_UNIQUE_ID_BYTES

// ncclUniqueId, passed by value to ncclCommInitRank (a struct of 128 chars, as nccl.h declares it).
struct UniqueId {
  char internal[kUniqueIdBytes];
};

// The oldest NCCL accepted, as ncclGetVersion reports it (major * 10000 + minor * 100 + patch).
inline constexpr int kMinimumVersion = 21800;

struct Api {
  std::string path;  // what dlopen loaded
  int version = 0;
  Result (*get_version)(int*) = nullptr;
  Result (*get_unique_id)(UniqueId*) = nullptr;
  Result (*comm_init_rank)(Comm*, int nranks, UniqueId id, int rank) = nullptr;
  Result (*comm_init_all)(Comm*, int ndev, const int* devlist) = nullptr;
  Result (*comm_destroy)(Comm) = nullptr;
  Result (*all_reduce)(const void* send, void* recv, std::size_t count, DataType, RedOp, Comm, Stream) = nullptr;
  Result (*all_gather)(const void* send, void* recv, std::size_t send_count, DataType, Comm, Stream) = nullptr;
  Result (*reduce_scatter)(const void* send, void* recv, std::size_t recv_count, DataType, RedOp, Comm,
                           Stream) = nullptr;
  Result (*group_start)() = nullptr;
  Result (*group_end)() = nullptr;
  const char* (*error_string)(Result) = nullptr;
};

// "2.18.3" from 21803.
std::string version_text(int version);

// The candidates in search order: libnccl.so.2 as given (the dynamic loader's search), then $NCCL_HOME/lib and, when
// the build found NCCL, the library directory beside its nccl.h.
std::vector<std::string> default_candidates();

// Loads the first candidate that opens, is NCCL 2.18+ and resolves every entry point; on failure returns false and
// `error` says, for every candidate, why it was not taken (not found, not NCCL, too old, a missing entry point).
// Never throws.
bool try_load(const std::vector<std::string>& candidates, Api& api, std::string& error);

// The process-wide NCCL, loaded once (thread-safe) from default_candidates(); throws Error with MC_STATUS_UNSUPPORTED
// and try_load's explanation when none can be used (every later call throws the same).
const Api& api();

// Throws Error(MC_STATUS_CUDA_ERROR) naming `call` and NCCL's error string unless result is kSuccess.
void check(const Api& api, Result result, const char* call);

}  // namespace nccl
}  // namespace moecutlass
