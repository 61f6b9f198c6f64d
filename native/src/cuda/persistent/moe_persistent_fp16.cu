// The persistent kernels with fp16 output (one unit per dtype so that nvcc builds them in parallel).
#define MC_PERSISTENT_ELEMENT cutlass::half_t
#define MC_PERSISTENT_LAUNCH launch_moe_persistent_fp16
#define MC_PERSISTENT_PREPARE prepare_moe_persistent_fp16
#define MC_PERSISTENT_MAX_CLUSTERS moe_persistent_max_clusters_fp16
#include "cuda/persistent/moe_persistent_launch.cuh"
