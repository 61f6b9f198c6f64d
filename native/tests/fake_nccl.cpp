/* A stand-in libnccl for the loader's tests (test_nccl_loader.cpp): it exports NCCL's entry points by name with
   C linkage and reports FAKE_NCCL_VERSION from ncclGetVersion; FAKE_NCCL_OMIT_REDUCE_SCATTER leaves
   ncclReduceScatter out. Nothing here talks to a GPU: the collectives only return errors or success codes. */
#include <cstddef>
#include <cstring>

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

struct fakeUniqueId {
  char internal[128];
};

FAKE_EXPORT int ncclGetVersion(int* version) {
  *version = FAKE_NCCL_VERSION;
  return 0;
}
FAKE_EXPORT int ncclGetUniqueId(fakeUniqueId* id) {
  memset(id->internal, 0x5a, sizeof id->internal);
  return 0;
}
FAKE_EXPORT int ncclCommInitRank(void** comm, int nranks, fakeUniqueId id, int rank) {
  (void)nranks; (void)id; (void)rank;
  *comm = nullptr;
  return 5; /* ncclInvalidUsage: the fake cannot make communicators */
}
FAKE_EXPORT int ncclCommInitAll(void** comm, int ndev, const int* devlist) {
  (void)comm; (void)ndev; (void)devlist;
  return 5;
}
FAKE_EXPORT int ncclCommDestroy(void* comm) { (void)comm; return 0; }
FAKE_EXPORT int ncclAllReduce(const void* s, void* r, size_t n, int t, int op, void* c, void* st) {
  (void)s; (void)r; (void)n; (void)t; (void)op; (void)c; (void)st;
  return 0;
}
FAKE_EXPORT int ncclAllGather(const void* s, void* r, size_t n, int t, void* c, void* st) {
  (void)s; (void)r; (void)n; (void)t; (void)c; (void)st;
  return 0;
}
#ifndef FAKE_NCCL_OMIT_REDUCE_SCATTER
FAKE_EXPORT int ncclReduceScatter(const void* s, void* r, size_t n, int t, int op, void* c, void* st) {
  (void)s; (void)r; (void)n; (void)t; (void)op; (void)c; (void)st;
  return 0;
}
#endif
FAKE_EXPORT int ncclGroupStart() { return 0; }
FAKE_EXPORT int ncclGroupEnd() { return 0; }
FAKE_EXPORT const char* ncclGetErrorString(int result) {
  return result == 5 ? "fake invalid usage" : "fake error";
}
