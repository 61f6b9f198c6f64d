/*
 * MoeCutlass: FP8 (e4m3) blockwise-scaled grouped GEMM for Mixture-of-Experts layers.
 *
 * The one public C header (the ABI). Rules (DESIGN.md section 4):
 *  - C only: fixed-width integers, opaque handles with create/destroy pairs, plain structs whose first
 *    field is `struct_size` (set it to sizeof(struct) so a struct can grow without breaking callers).
 *  - Every function returns an int32_t status (MC_STATUS_*); on failure mc_get_last_error() gives a
 *    thread-local, library-owned message naming the argument, its value and the rule it broke.
 *  - Dtypes, backends and strategies are int32_t with named constants, never C enums (their underlying
 *    type differs between compilers, and the generated C# must not).
 *  - A call that fails validation writes nothing: no output buffer, no out-parameter, no handle state.
 *
 * Data contracts (DeepSeek-V3 FP8 recipe), all row-major:
 *   A         e4m3 [rows, K]                     activations sorted by expert
 *   A scales  fp32 [rows, ceil(K/128)]           one per token per 128 K ("1x128")
 *   B         e4m3 [E, N, K]                     expert weights, K contiguous
 *   B scales  fp32 [E, ceil(N/128), ceil(K/128)] one per 128x128 block
 *   offsets   int32 [E+1] device memory          expert e owns rows offsets[e] .. offsets[e+1]-1
 *   D         bf16|fp16 [rows, N]                rounded to nearest even; fp16 D does not saturate: a result
 *                                                whose magnitude rounds beyond 65504 (|x| >= 65520) is stored as
 *                                                +inf or -inf. Use bf16 D where results may exceed that range.
 *
 * Asynchrony: calls that take an mc_stream are enqueued on that stream (NULL = the context's default
 * stream) and return before the work is done on a CUDA context; on the CPU reference context they run
 * to completion before returning.
 */
#ifndef MOECUTLASS_MOECUTLASS_H
#define MOECUTLASS_MOECUTLASS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  if defined(MOECUTLASS_BUILDING)
#    define MC_API __declspec(dllexport)
#  else
#    define MC_API __declspec(dllimport)
#  endif
#else
#  define MC_API __attribute__((visibility("default")))
#endif

/* Bumped on every change that breaks binary compatibility; the C# side refuses any other value. */
#define MC_ABI_VERSION 2

/* ---- status codes ------------------------------------------------------------------------------ */
typedef int32_t mc_status;

#define MC_STATUS_OK 0
#define MC_STATUS_NULL_POINTER 1          /* a required pointer argument is NULL */
#define MC_STATUS_OUT_OF_RANGE 2          /* an integer argument is outside its documented range */
#define MC_STATUS_MISALIGNED 3            /* a size or pointer breaks an alignment rule (K % 16, N % 8, 16-byte pointers) */
#define MC_STATUS_INVALID_DTYPE 4         /* unknown dtype, or one this operation does not take */
#define MC_STATUS_INVALID_STRATEGY 5      /* unknown grouped-GEMM strategy */
#define MC_STATUS_INVALID_BACKEND 6       /* unknown backend */
#define MC_STATUS_INVALID_HANDLE 7        /* a handle that was destroyed or never created */
#define MC_STATUS_CONTEXT_MISMATCH 8      /* a handle (plan, stream, event) used with another context */
#define MC_STATUS_INVALID_OFFSETS 9       /* expert offsets not monotonic, negative, or beyond rows (checked exactly on the CPU) */
#define MC_STATUS_BUFFER_TOO_SMALL 10     /* a pointer into a library allocation whose remaining bytes cannot hold the tensor */
#define MC_STATUS_INVALID_STRUCT_SIZE 11  /* struct_size is not one this library version understands */
#define MC_STATUS_INVALID_ARGUMENT 12     /* any other invalid argument (the message says which) */
#define MC_STATUS_NOT_READY 13            /* an event or stream has pending work (not an error for queries) */
#define MC_STATUS_BUSY 14                 /* the plan is already running: another thread's mc_grouped_gemm_run of it has not returned */
#define MC_STATUS_UNSUPPORTED 20          /* valid request this build or device cannot do (e.g. built without CUDA) */
#define MC_STATUS_NO_DEVICE 21            /* no CUDA driver, no device, or the device index does not exist */
#define MC_STATUS_OUT_OF_MEMORY 22        /* host or device allocation failed */
#define MC_STATUS_DEVICE_FAULT 23         /* sticky device error: the context is unusable and must be destroyed */
#define MC_STATUS_CUDA_ERROR 24           /* any other CUDA runtime error (the message names the error and call) */
#define MC_STATUS_INTERNAL 30             /* a bug: an exception or invariant failure inside the library */

/* ---- dtypes, backends, strategies -------------------------------------------------------------- */
#define MC_DTYPE_FP32 1
#define MC_DTYPE_BF16 2
#define MC_DTYPE_FP16 3
#define MC_DTYPE_E4M3 4

#define MC_BACKEND_CPU 0   /* the CPU reference backend (always present) */
#define MC_BACKEND_CUDA 1  /* CUDA SM90a backend, device given by mc_context_desc.device */

#define MC_STRATEGY_AUTO 0                /* the library chooses per call */
#define MC_STRATEGY_SINGLE 1              /* one kernel configuration for every expert */
#define MC_STRATEGY_EXPERT_SPECIALIZED 2  /* per-expert configuration chosen on the device from its rows */
#define MC_STRATEGY_PERSISTENT 3          /* one persistent launch over the base pointers and the device offsets: no
                                             per-expert arrays or precompute (every configuration, swap-AB included) */
#define MC_STRATEGY_CUBLAS 4              /* dequantize A and B to bf16, then cuBLAS: one grouped GEMM call, or a
                                             GEMM per expert where the experts' GEMMs are large (no registry
                                             configuration). The one strategy that copies the expert offsets to the
                                             host and synchronises with the run's stream, so it cannot run under
                                             CUDA-graph capture. Auto never chooses it on SM90a devices and chooses
                                             it on devices without SM90a (mc_device_info.has_sm90a = 0). The CPU
                                             reference runs it (the same math as every strategy). The CUDA backend
                                             loads cuBLAS 12.5 or later at run time (libcublas.so.13, then .so.12):
                                             without one, creating such a plan fails with MC_STATUS_UNSUPPORTED
                                             naming what was tried. Its runs refuse bad offsets like the CPU backend
                                             (MC_STATUS_INVALID_OFFSETS) and a capturing stream with
                                             MC_STATUS_UNSUPPORTED, both before writing anything. */

/* mc_grouped_gemm_desc.flags */
#define MC_PLAN_STATIC_WEIGHTS 1          /* the caller promises that b and b_scales keep their values while the
                                             plan lives (weights loaded once, as a model's are). MC_STRATEGY_CUBLAS
                                             then dequantizes B on the first run and again only when a run passes
                                             other b or b_scales pointers; without the flag it dequantizes the
                                             experts that have rows on every run. Every other strategy reads the FP8
                                             operands directly and is unaffected. A plan whose weights are rewritten
                                             in place must not set it. */

#define MC_COPY_HOST_TO_DEVICE 1
#define MC_COPY_DEVICE_TO_HOST 2
#define MC_COPY_DEVICE_TO_DEVICE 3

/* Bits of the context's device-side error flag (mc_context_query_device_errors). */
#define MC_DEVICE_ERROR_OFFSETS_NOT_MONOTONIC 1
#define MC_DEVICE_ERROR_OFFSETS_NEGATIVE 2
#define MC_DEVICE_ERROR_OFFSETS_BEYOND_ROWS 4
#define MC_DEVICE_ERROR_TOPK_ID_OUT_OF_RANGE 8  /* an MoE layer's precomputed top-k id outside 0 .. total_experts-1 */
#define MC_DEVICE_ERROR_TOPK_ID_DUPLICATE 16    /* an MoE layer's precomputed top-k ids repeat an expert in one token */

/* MoE layer routing modes (mc_moe_layer_desc.routing). */
#define MC_ROUTING_SOFTMAX_TOPK 1  /* router logits [T, total_experts] -> softmax -> the top_k largest */
#define MC_ROUTING_PRECOMPUTED 2   /* the caller passes top-k expert ids and weights [T, top_k] */

/* MoE layer activations (mc_moe_layer_desc.activation). */
#define MC_ACTIVATION_SILU_AND_MUL 1  /* GEMM1 rows are [gate | up] (2I columns); h = silu(gate) * up */

/* Limits checked by every entry point. */
#define MC_MAX_EXPERTS 4096
#define MC_MAX_DIM 1048576           /* N and K */
#define MC_MAX_ROWS 2147483647       /* rows fit the int32 expert offsets */
#define MC_SCALE_BLOCK 128           /* 1x128 activation and 128x128 weight scale blocks */
#define MC_K_ALIGNMENT 16
#define MC_N_ALIGNMENT 8
#define MC_POINTER_ALIGNMENT 16
#define MC_MAX_PLAN_CONFIGS 8       /* entries of mc_grouped_gemm_desc.configs and of a launch */

/* Mainloop schedules of a kernel configuration (mc_kernel_config_info.schedule). */
#define MC_SCHEDULE_COOPERATIVE 1  /* two consumer warp groups share one output tile */
#define MC_SCHEDULE_PINGPONG 2     /* each consumer warp group owns a tile; one's epilogue overlaps the other's math */

/* ---- opaque handles ---------------------------------------------------------------------------- */
typedef struct mc_context_s* mc_context;
typedef struct mc_stream_s* mc_stream;
typedef struct mc_event_s* mc_event;
typedef struct mc_grouped_gemm_plan_s* mc_grouped_gemm_plan;
typedef struct mc_graph_s* mc_graph;  /* an executable CUDA graph (mc_stream_end_capture) */
typedef struct mc_moe_layer_s* mc_moe_layer;
typedef struct mc_communicator_s* mc_communicator;  /* an NCCL communicator of one context (one rank) */

/* ---- descriptors --------------------------------------------------------------------------------- */
typedef struct mc_build_info {
  uint32_t struct_size;
  int32_t abi_version;
  int32_t version_major;
  int32_t version_minor;
  int32_t version_patch;
  int32_t has_cuda;            /* 1 when the CUDA backend was compiled in */
  char version[64];            /* full version string, e.g. "0.1.0+abc1234" */
  char git_commit[48];
  char cuda_architectures[64]; /* e.g. "80;89;90a;100" (grouped GEMMs: 90a only), empty without CUDA */
  char compiler[64];
} mc_build_info;

typedef struct mc_device_info {
  uint32_t struct_size;
  int32_t device;
  int32_t compute_major;
  int32_t compute_minor;
  int32_t multiprocessors;
  int32_t l2_cache_bytes;
  int64_t total_memory_bytes;
  int64_t shared_memory_per_block_optin;
  int32_t memory_bus_width_bits;
  int32_t memory_clock_khz;
  double peak_memory_bandwidth_gbps; /* from bus width and memory clock */
  char name[256];
  /* The class the kernel selection tables know the device as ("H100 SXM (132 SMs, HBM3)", "H200 (132 SMs,
     HBM3e)", or "other GPU ...") and that class's datasheet ceilings, the roofline benchmarks measure against:
     dense FP8 tensor throughput and HBM bandwidth. Both 0 for a class with no known ceilings. */
  char gpu_class[64];
  double peak_fp8_dense_tflops;
  double datasheet_bandwidth_gbps;
  /* 1 when the device runs this library's SM90a grouped-GEMM kernels: compute capability 9.0 exactly (sm_90a code
     runs nowhere else) and a build whose grouped-GEMM kernels are sm_90a. MC_STRATEGY_SINGLE, _EXPERT_SPECIALIZED
     and _PERSISTENT need it. 0: plans of those strategies fail with MC_STATUS_UNSUPPORTED naming the compute
     capability, and MC_STRATEGY_AUTO resolves to MC_STRATEGY_CUBLAS. */
  int32_t has_sm90a;
} mc_device_info;

typedef struct mc_context_desc {
  uint32_t struct_size;
  int32_t backend;      /* MC_BACKEND_* */
  int32_t device;       /* CUDA device index; 0 for the CPU backend */
  int32_t cpu_threads;  /* CPU backend worker threads; 0 = all hardware threads */
} mc_context_desc;

typedef struct mc_context_info {
  uint32_t struct_size;
  int32_t backend;
  int32_t device;
  int32_t cpu_threads;
  int32_t usable;              /* 0 after a sticky device fault */
  int64_t allocated_bytes;     /* live bytes from mc_malloc on this context */
  int64_t allocation_count;
} mc_context_info;

typedef struct mc_grouped_gemm_desc {
  uint32_t struct_size;
  int32_t experts;       /* E, 1 .. MC_MAX_EXPERTS */
  int32_t n;             /* N, multiple of MC_N_ALIGNMENT */
  int32_t k;             /* K, multiple of MC_K_ALIGNMENT */
  int32_t output_dtype;  /* MC_DTYPE_BF16 or MC_DTYPE_FP16 (fp16 overflows to +-inf beyond 65504, see the top) */
  int32_t strategy;      /* MC_STRATEGY_* */
  int32_t max_rows;      /* largest `rows` any run will pass, >= 0 */
  /* Optional (a struct_size that ends before config_count means 0): the kernel configurations to use instead of
     the library's per-GPU-class selection, for tuning and measurement. 0 = the library selects. 1 ..
     MC_MAX_PLAN_CONFIGS = configs[0 .. config_count-1] are registry indices (mc_get_kernel_config_info), distinct,
     narrowest first; configuration i takes the experts with config_max_rows[i-1]+1 .. config_max_rows[i] rows
     (the first from 1), so config_max_rows increases and its last entry is MC_MAX_ROWS. A configuration that
     should take no expert is simply not listed. MC_STRATEGY_SINGLE takes exactly one, which then serves every
     call; with several, expert specialization buckets experts by these ranges and the last one serves the calls
     whose average rows per expert reach its first row minus one (MC_STRATEGY_PERSISTENT: every call runs one
     persistent launch per listed configuration, each over its range's experts). MC_STRATEGY_CUBLAS takes none
     (cuBLAS picks its own kernels). Entries past config_count are ignored. */
  int32_t config_count;
  int32_t configs[MC_MAX_PLAN_CONFIGS];
  int32_t config_max_rows[MC_MAX_PLAN_CONFIGS];
  /* Optional (a struct_size that ends before it means 0): MC_PLAN_* bits; other bits are refused. */
  int32_t flags;
} mc_grouped_gemm_desc;

typedef struct mc_grouped_gemm_plan_info {
  uint32_t struct_size;
  int32_t strategy;          /* the strategy asked for */
  int32_t backend;
  int32_t kernel_count;      /* kernel configurations the plan may launch (= config_count; 0 for MC_STRATEGY_CUBLAS) */
  int64_t workspace_bytes;   /* device workspace the plan owns */
  char kernels[256];         /* configuration names, ';'-separated, in the order of configs */
  int32_t config_count;      /* configurations the plan may launch */
  int32_t configs[2 * MC_MAX_PLAN_CONFIGS]; /* their registry indices, ascending */
  char selection[64];        /* where the selection came from: the GPU class, "mc_grouped_gemm_desc.configs", or
                                "cuBLAS" ("cuBLAS (auto: the device has no SM90a)" when auto chose it) */
} mc_grouped_gemm_plan_info;

/* What one run launches (mc_grouped_gemm_plan_resolve): the same answer on every backend. */
typedef struct mc_grouped_gemm_launch {
  uint32_t struct_size;
  int32_t strategy;                       /* MC_STRATEGY_SINGLE, _EXPERT_SPECIALIZED, _PERSISTENT or _CUBLAS */
  int32_t config_count;                   /* launched configurations, 1 .. MC_MAX_PLAN_CONFIGS (0 for _CUBLAS) */
  int32_t configs[MC_MAX_PLAN_CONFIGS];   /* registry indices */
  int32_t min_rows[MC_MAX_PLAN_CONFIGS];  /* each takes the experts with min_rows .. max_rows rows */
  int32_t max_rows[MC_MAX_PLAN_CONFIGS];
} mc_grouped_gemm_launch;

/* One row of the kernel-configuration registry. */
typedef struct mc_kernel_config_info {
  uint32_t struct_size;
  int32_t index;
  int32_t tile_m;     /* CUTLASS tile; with swap_ab the weights are CUTLASS's A (tile_m along N) */
  int32_t tile_n;     /* and the token rows its B (tile_n along the rows) */
  int32_t tile_k;
  int32_t cluster_m;
  int32_t cluster_n;
  int32_t schedule;   /* MC_SCHEDULE_* */
  int32_t swap_ab;    /* 1: computes D^T = B * A^T (for experts with few rows) */
  int32_t compiled;   /* 1 when this library holds the kernels (a CUDA build); the CPU backend accepts any */
  char name[64];
} mc_kernel_config_info;

typedef struct mc_grouped_gemm_args {
  uint32_t struct_size;
  int32_t rows;                 /* rows of A and D in this call, 0 .. plan max_rows */
  const void* a;                /* e4m3 [rows, K] */
  const float* a_scales;        /* fp32 [rows, ceil(K/128)] */
  const void* b;                /* e4m3 [E, N, K] */
  const float* b_scales;        /* fp32 [E, ceil(N/128), ceil(K/128)] */
  const int32_t* expert_offsets;/* int32 [E+1], context memory */
  void* d;                      /* bf16|fp16 [rows, N] */
} mc_grouped_gemm_args;

/* ---- library ------------------------------------------------------------------------------------- */
/* Writes MC_ABI_VERSION of the loaded library. */
MC_API mc_status mc_get_abi_version(int32_t* abi_version);
/* Fills *info (set info->struct_size first). */
MC_API mc_status mc_get_build_info(mc_build_info* info);
/* The calling thread's message for the last failed call; "" when the last call succeeded.
   Library-owned, valid until the next call on this thread. */
MC_API mc_status mc_get_last_error(const char** message);
/* The symbolic name of a status code ("MC_STATUS_OUT_OF_RANGE"); static storage. */
MC_API mc_status mc_status_name(mc_status status, const char** name);
/* Size (field == NULL or "") or byte offset of a field of a public struct, as this library was compiled.
   Lets bindings check their layouts; MC_STATUS_INVALID_ARGUMENT for unknown names. */
MC_API mc_status mc_get_struct_layout(const char* struct_name, const char* field_name, int64_t* value);

/* ---- devices ------------------------------------------------------------------------------------- */
/* Number of CUDA devices; 0 (and MC_STATUS_OK) without CUDA support, driver or device. */
MC_API mc_status mc_get_device_count(int32_t* count);
MC_API mc_status mc_get_device_info(int32_t device, mc_device_info* info);

/* ---- contexts ------------------------------------------------------------------------------------ */
/* MC_STATUS_OUT_OF_MEMORY (nothing created, nothing leaked) when the CPU backend's worker threads cannot all be
   started (process or address-space limits): ask for fewer cpu_threads. */
MC_API mc_status mc_context_create(const mc_context_desc* desc, mc_context* context);
/* Destroying NULL is a no-op. Frees every allocation, stream, event, plan and graph still owned. A create of a
   stream, event, plan or graph that races the destroy either fails (MC_STATUS_INVALID_HANDLE) or its object is
   destroyed with the context. Every *_destroy is exactly-once: of several threads destroying one handle, one gets
   MC_STATUS_OK and the others MC_STATUS_INVALID_HANDLE. */
MC_API mc_status mc_context_destroy(mc_context context);
MC_API mc_status mc_context_get_info(mc_context context, mc_context_info* info);
/* Waits for all work on the context, then reads the device-side error flag (MC_DEVICE_ERROR_* bits);
   reset != 0 clears it. Always 0 on the CPU backend, which rejects bad offsets instead. */
MC_API mc_status mc_context_query_device_errors(mc_context context, int32_t reset, int32_t* flags);
MC_API mc_status mc_context_synchronize(mc_context context);

/* ---- memory -------------------------------------------------------------------------------------- */
/* Context memory: every operand the library reads or writes on the device side (the device end of a copy, the
   destination of a fill, convert and quantize buffers, every grouped-GEMM tensor) must lie inside an mc_malloc
   allocation of the context the call runs on, with the tensor's bytes remaining up to the allocation's end
   (else MC_STATUS_BUFFER_TOO_SMALL). A pointer into an allocation of another context is
   MC_STATUS_INVALID_ARGUMENT (copy the data across with mc_memcpy_async through the host). Any other pointer is
   MC_STATUS_INVALID_ARGUMENT on the CPU backend; on a CUDA context it is accepted unchecked as device memory of
   another library (cudaMalloc, PyTorch...) on the same device, whose size the caller guarantees. */
/* Context memory (device memory on CUDA, host memory on CPU), aligned to 256 bytes. bytes > 0. */
MC_API mc_status mc_malloc(mc_context context, int64_t bytes, void** pointer);
/* Frees memory from mc_malloc of the same context; NULL is a no-op. */
MC_API mc_status mc_free(mc_context context, void* pointer);
/* Copy `bytes` between host and context memory (kind = MC_COPY_*), ordered on `stream`.
   Host memory must stay valid until the stream reaches the copy. */
MC_API mc_status mc_memcpy_async(mc_context context, void* dst, const void* src, int64_t bytes, int32_t kind,
                                 mc_stream stream);
/* Fill `count` elements of `element_size` bytes (1, 2 or 4) at dst with the pattern at *value. */
MC_API mc_status mc_fill_async(mc_context context, void* dst, const void* value, int32_t element_size, int64_t count,
                               mc_stream stream);

/* ---- streams and events ------------------------------------------------------------------------- */
MC_API mc_status mc_stream_create(mc_context context, mc_stream* stream);
MC_API mc_status mc_stream_destroy(mc_stream stream);
MC_API mc_status mc_stream_synchronize(mc_stream stream);
/* The underlying cudaStream_t (NULL on the CPU backend), for interop with other CUDA libraries. */
MC_API mc_status mc_stream_get_native(mc_stream stream, void** native_stream);
MC_API mc_status mc_event_create(mc_context context, mc_event* event);
MC_API mc_status mc_event_destroy(mc_event event);
MC_API mc_status mc_event_record(mc_event event, mc_stream stream);
MC_API mc_status mc_event_synchronize(mc_event event);
/* MC_STATUS_OK when complete, MC_STATUS_NOT_READY while pending. */
MC_API mc_status mc_event_query(mc_event event);
/* Milliseconds between two recorded, completed events of one context. */
MC_API mc_status mc_event_elapsed_ms(mc_event start, mc_event end, float* milliseconds);

/* ---- CUDA graphs ------------------------------------------------------------------------------- */
/* Capture once, replay many times: work enqueued on a capturing stream is recorded into a graph instead of
   being run, and the instantiated graph replays all of it with one launch (no per-kernel host overhead).
   Everything a grouped-GEMM run needs stays on the device, so mc_grouped_gemm_run can be captured (except with
   MC_STRATEGY_CUBLAS, which reads the expert offsets on the host).
   Graphs need the CUDA backend: on the CPU backend mc_stream_begin_capture returns MC_STATUS_UNSUPPORTED. */

/* Starts capturing `stream` into a CUDA graph (cudaStreamCaptureModeThreadLocal: end it on the same thread).
   `stream` must be a stream from mc_stream_create; NULL is rejected (MC_STATUS_NULL_POINTER): capturing the
   context's default stream would also capture unrelated library work. MC_STATUS_INVALID_ARGUMENT when the
   stream is already capturing. Until mc_stream_end_capture, calls that would wait for the stream
   (mc_stream_synchronize on it, mc_context_synchronize, mc_context_query_device_errors) fail with
   MC_STATUS_INVALID_ARGUMENT ("stream is capturing") instead of invalidating the capture. */
MC_API mc_status mc_stream_begin_capture(mc_stream stream);
/* Ends the capture of `stream` and instantiates the recorded work into an executable graph, written to
   *graph (owned by the stream's context: destroyed with it at the latest). MC_STATUS_INVALID_ARGUMENT when
   the stream is not capturing. When the capture was invalidated (an operation not permitted during capture,
   e.g. a synchronization of the stream by other code), the broken capture is ended and discarded, the
   stream is usable again, *graph is not written, and the CUDA error is returned (MC_STATUS_CUDA_ERROR). */
MC_API mc_status mc_stream_end_capture(mc_stream stream, mc_graph* graph);
/* Enqueues one replay of `graph` on `stream` (NULL = the context's default stream; a stream of another
   context is MC_STATUS_CONTEXT_MISMATCH). A graph can be launched any number of times, on any stream of its
   context; launches of one graph run one after another. */
MC_API mc_status mc_graph_launch(mc_graph graph, mc_stream stream);
/* Destroying NULL is a no-op. A replay already enqueued still completes. */
MC_API mc_status mc_graph_destroy(mc_graph graph);

/* ---- conversion and FP8 quantization ------------------------------------------------------------ */
/* Element-wise conversion between MC_DTYPE_* (e4m3: round to nearest even, saturating to +-448,
   NaN stays NaN; bf16 and fp16: round to nearest even, overflowing to +-inf as IEEE does, e.g. fp16 from
   |x| >= 65520). Buffers are context memory. */
MC_API mc_status mc_convert_async(mc_context context, const void* src, int32_t src_dtype, void* dst, int32_t dst_dtype,
                                  int64_t count, mc_stream stream);
/* Activations [rows, cols] (fp32|bf16|fp16) -> e4m3 [rows, cols] and fp32 scales [rows, ceil(cols/128)],
   one scale per row per 128 columns: scale = amax / 448 (1 for an all-zero block). */
MC_API mc_status mc_quantize_activations_async(mc_context context, const void* input, int32_t input_dtype, int32_t rows,
                                               int32_t cols, void* output, float* scales, mc_stream stream);
/* Weights [experts, n, k] (fp32|bf16|fp16) -> e4m3 [experts, n, k] and fp32 scales
   [experts, ceil(n/128), ceil(k/128)], one scale per 128x128 block. */
MC_API mc_status mc_quantize_weights_async(mc_context context, const void* input, int32_t input_dtype, int32_t experts,
                                           int32_t n, int32_t k, void* output, float* scales, mc_stream stream);

/* ---- grouped GEMM ----------------------------------------------------------------------------- */
/* D[rows of e] = dequant(A[rows of e]) * dequant(B[e])^T for every expert e. The plan owns its workspace;
   create it once, run it many times on any stream of its context. A plan holds one set of per-run device
   arrays (and, on CUDA, one fork event and set of side streams), so runs of the same plan must not overlap:
   order them on one stream or with events (different plans may run concurrently; use one plan per concurrent
   stream). The library detects what it can without waiting: a run called while another thread's run of the
   same plan is still inside mc_grouped_gemm_run fails with MC_STATUS_BUSY and does nothing. It cannot detect
   device work of an earlier run that is still pending on another stream (on CUDA a run returns once enqueued,
   and an event-ordered run is indistinguishable from an overlapping one without a host wait): ordering those is
   the caller's job. */
MC_API mc_status mc_grouped_gemm_plan_create(mc_context context, const mc_grouped_gemm_desc* desc,
                                             mc_grouped_gemm_plan* plan);
MC_API mc_status mc_grouped_gemm_plan_destroy(mc_grouped_gemm_plan plan);
MC_API mc_status mc_grouped_gemm_plan_get_info(mc_grouped_gemm_plan plan, mc_grouped_gemm_plan_info* info);
MC_API mc_status mc_grouped_gemm_run(mc_grouped_gemm_plan plan, const mc_grouped_gemm_args* args, mc_stream stream);
/* What a run of this plan with `rows` rows executes: MC_STRATEGY_SINGLE, MC_STRATEGY_EXPERT_SPECIALIZED,
   MC_STRATEGY_PERSISTENT or MC_STRATEGY_CUBLAS (auto decides per call from rows, E, N and K; expert specialization
   falls back to the single configuration once the average rows per expert reaches its widest swapped threshold).
   rows: 0 .. the plan's max_rows. */
MC_API mc_status mc_grouped_gemm_plan_resolve_strategy(mc_grouped_gemm_plan plan, int32_t rows, int32_t* strategy);
/* The configurations a run of this plan with `rows` rows launches and the rows per expert each takes (set
   launch->struct_size first). rows: 0 .. the plan's max_rows. */
MC_API mc_status mc_grouped_gemm_plan_resolve(mc_grouped_gemm_plan plan, int32_t rows, mc_grouped_gemm_launch* launch);

/* ---- kernel-configuration registry --------------------------------------------------------------- */
/* Number of configurations in the registry (indices 0 .. count-1; appending keeps existing indices). */
MC_API mc_status mc_get_kernel_config_count(int32_t* count);
/* Fills *info for configuration `index` (set info->struct_size first). */
MC_API mc_status mc_get_kernel_config_info(int32_t index, mc_kernel_config_info* info);
/* The index of the configuration named `name`; MC_STATUS_INVALID_ARGUMENT (naming it) when there is none. */
MC_API mc_status mc_find_kernel_config(const char* name, int32_t* index);

/* ---- MoE layer ----------------------------------------------------------------------------------- */
/* A whole Mixture-of-Experts layer on one device (issue 13): route, permute, gather + quantize, GEMM1,
   SiLU-and-mul + requantize, GEMM2, weighted combine, with every stage on the context's device and no host
   synchronisation, so a forward call can be captured into a CUDA graph (except with strategy MC_STRATEGY_CUBLAS,
   whose GEMMs read the expert offsets on the host).

   For each token t with top-k experts e_0 .. e_{k-1} and routing weights w_0 .. w_{k-1}:
     output[t] = sum over j (in order j = 0 .. k-1, local experts only) of w_j * y_j, where
     y_j = dequant(fp8(h_j)) * dequant(W2[e_j])^T,  h_j = silu(z_gate) * z_up,
     z = dequant(fp8(hidden[t])) * dequant(W13[e_j])^T  ([gate | up], 2I columns, rounded to bf16).
   Activations are quantized 1x128 (as mc_quantize_activations_async); the GEMMs are this library's grouped GEMM
   (bf16 D). A token whose k experts all lie outside the local slice gets zeros. The result is deterministic: the
   same inputs give the same bits on every run, eager or replayed from a graph (no order-dependent atomics).

   Routing (MC_ROUTING_SOFTMAX_TOPK): the k largest logits, ties to the lower expert id; weights are the softmax over
   all total_experts logits, or with normalize_routing_weights the softmax over the k chosen (they sum to 1).
   Precomputed routing (MC_ROUTING_PRECOMPUTED): ids must lie in 0 .. total_experts-1 and be distinct within a token.
   The CPU backend checks that exactly and rejects the call (MC_STATUS_INVALID_ARGUMENT, nothing written); a CUDA
   context cannot read device ids without waiting, so it computes every slot whose id is in range (a duplicated id
   adds that expert twice), skips the others, and raises MC_DEVICE_ERROR_TOPK_ID_* in the context's device error
   flag.

   Expert parallelism: the layer holds local_experts experts, global ids first_expert .. first_expert +
   local_experts - 1 of the router's total_experts; slots routed elsewhere contribute nothing, so the slices'
   outputs sum to the whole layer's. */
typedef struct mc_moe_layer_desc {
  uint32_t struct_size;
  int32_t total_experts;      /* experts the router chooses from (logit columns), 1 .. MC_MAX_EXPERTS */
  int32_t first_expert;       /* global id of the first local expert, >= 0 */
  int32_t local_experts;      /* E: experts whose weights this layer holds, first_expert + E <= total_experts */
  int32_t top_k;              /* experts per token, 1 .. min(total_experts, 32) */
  int32_t hidden;             /* H: GEMM1's K and GEMM2's N (multiple of MC_K_ALIGNMENT) */
  int32_t inter;              /* I: per-expert intermediate size, GEMM2's K (multiple of MC_K_ALIGNMENT) */
  int32_t routing;            /* MC_ROUTING_* */
  int32_t normalize_routing_weights; /* 0 or 1 (MC_ROUTING_SOFTMAX_TOPK only; precomputed weights are used as given) */
  int32_t activation;         /* MC_ACTIVATION_SILU_AND_MUL */
  int32_t input_dtype;        /* hidden states: MC_DTYPE_BF16 or MC_DTYPE_FP16 */
  int32_t logits_dtype;       /* router logits: MC_DTYPE_FP32, _BF16 or _FP16 (ignored for precomputed routing) */
  int32_t output_dtype;       /* MC_DTYPE_BF16 or MC_DTYPE_FP16 */
  int32_t max_tokens;         /* largest T a forward call passes, 0 .. ; max_tokens * top_k <= MC_MAX_ROWS */
  int32_t strategy;           /* grouped-GEMM strategy of both GEMMs (MC_STRATEGY_*; with MC_STRATEGY_CUBLAS a
                                 forward call synchronises and cannot be captured) */
} mc_moe_layer_desc;

/* The expert weights, context memory, referenced (not copied): they must stay allocated and unchanged while the
   layer exists. Layout as the grouped GEMM's B operand (see the top):
     w13        e4m3 [E, 2I, H]   rows 0 .. I-1 of each expert are the gate projection, I .. 2I-1 the up projection
     w13_scales fp32 [E, ceil(2I/128), ceil(H/128)]
     w2         e4m3 [E, H, I]
     w2_scales  fp32 [E, ceil(H/128), ceil(I/128)] */
typedef struct mc_moe_layer_weights {
  uint32_t struct_size;
  const void* w13;
  const float* w13_scales;
  const void* w2;
  const float* w2_scales;
} mc_moe_layer_weights;

typedef struct mc_moe_layer_args {
  uint32_t struct_size;
  int32_t tokens;               /* T, 0 .. max_tokens */
  const void* hidden;           /* input_dtype [T, H] */
  const void* router_logits;    /* logits_dtype [T, total_experts]; MC_ROUTING_SOFTMAX_TOPK, else must be NULL */
  const int32_t* topk_ids;      /* int32 [T, top_k] global expert ids; MC_ROUTING_PRECOMPUTED, else must be NULL */
  const float* topk_weights;    /* fp32 [T, top_k]; MC_ROUTING_PRECOMPUTED, else must be NULL */
  void* output;                 /* output_dtype [T, H], overwritten completely; must not overlap the inputs */
} mc_moe_layer_args;

typedef struct mc_moe_layer_info {
  uint32_t struct_size;
  int32_t backend;
  int32_t strategy;             /* the grouped-GEMM strategy asked for */
  int64_t workspace_bytes;      /* context memory the layer owns (sized from max_tokens at creation) */
  int32_t max_rows;             /* max_tokens * top_k: the largest number of expert rows a forward call makes */
  char gemm1_kernels[256];      /* the GEMM plans' configuration names (mc_grouped_gemm_plan_info.kernels) */
  char gemm2_kernels[256];
} mc_moe_layer_info;

/* Creates a layer: validates the descriptor and the weight buffers, creates the two grouped-GEMM plans and
   allocates the workspace for max_tokens. A layer is used like a plan: forward calls of one layer must not overlap
   (MC_STATUS_BUSY for a concurrent call from another thread); use one layer per concurrent stream. */
MC_API mc_status mc_moe_layer_create(mc_context context, const mc_moe_layer_desc* desc,
                                     const mc_moe_layer_weights* weights, mc_moe_layer* layer);
MC_API mc_status mc_moe_layer_destroy(mc_moe_layer layer);
MC_API mc_status mc_moe_layer_get_info(mc_moe_layer layer, mc_moe_layer_info* info);
/* One forward step on `stream` (NULL = the context's default stream). Nothing is allocated and nothing is copied to
   the host. A rejected call writes nothing. */
MC_API mc_status mc_moe_layer_forward(mc_moe_layer layer, const mc_moe_layer_args* args, mc_stream stream);
/* Events recorded at a forward call's stage boundaries, for per-stage timing (mc_moe_layer_forward_timed). */
#define MC_MOE_LAYER_STAGE_EVENTS 8
/* mc_moe_layer_forward, with events[i] (i = 0 .. MC_MOE_LAYER_STAGE_EVENTS-1) recorded on `stream` at the stage
   boundaries: 0 before the first stage, then after routing (right after 0 for precomputed routing), the permutation,
   the gather + quantize, GEMM1, SiLU-and-mul + quantize, GEMM2 and the combine (7). Recording costs a few
   microseconds per event on the host and serializes nothing else; use mc_event_elapsed_ms on consecutive events.
   event_count must be MC_MOE_LAYER_STAGE_EVENTS; every event belongs to the layer's context. */
MC_API mc_status mc_moe_layer_forward_timed(mc_moe_layer layer, const mc_moe_layer_args* args, mc_stream stream,
                                            const mc_event* events, int32_t event_count);

/* ---- multi-GPU MoE layer (NCCL) ----------------------------------------------------------------- */
/* Tensor- and expert-parallel layers across GPUs (issue 16, docs/design/multi-gpu.md). NCCL is not linked: a
   library configured with MOECUTLASS_NCCL=ON or AUTO (nccl.h found) loads libnccl.so.2 (2.18 or later) at run time,
   at the first call that needs it: the dynamic loader's search path, then $NCCL_HOME/lib, then the NCCL the library
   was built against. Without one, and in a library built without NCCL, every call below fails with
   MC_STATUS_UNSUPPORTED and a message naming why (what was tried). The CPU backend has no communicator
   (MC_STATUS_UNSUPPORTED). NCCL errors are MC_STATUS_CUDA_ERROR, the message naming the NCCL call and its error.
   The library never enables NVLink multicast (NVLS); callers that should not use it set NCCL_NVLS_ENABLE=0. */
#define MC_NCCL_UNIQUE_ID_BYTES 128
/* NCCL's ncclUniqueId (the bytes), with the struct_size every public struct starts with. */
typedef struct mc_nccl_unique_id {
  uint32_t struct_size;
  uint8_t bytes[MC_NCCL_UNIQUE_ID_BYTES];
} mc_nccl_unique_id;

typedef struct mc_communicator_info {
  uint32_t struct_size;
  int32_t world_size;    /* W */
  int32_t rank;          /* r, 0 .. W-1 */
  int32_t device;        /* the CUDA device of the communicator's context */
  int32_t nccl_version;  /* of the loaded NCCL, major * 10000 + minor * 100 + patch */
} mc_communicator_info;

/* One process per GPU: rank 0 calls mc_nccl_get_unique_id and hands the bytes to the other ranks (a file, a
   socket); every rank then calls mc_communicator_create with its own context (its device), the same id and
   world_size, and its rank. mc_communicator_create blocks until all world_size ranks have joined. */
MC_API mc_status mc_nccl_get_unique_id(mc_nccl_unique_id* id);
MC_API mc_status mc_communicator_create(mc_context context, const mc_nccl_unique_id* id, int32_t world_size,
                                        int32_t rank, mc_communicator* communicator);
/* One process driving several GPUs: communicators[i] (rank i of count) for contexts[i]; the contexts must be CUDA
   contexts on distinct devices. Nothing is written unless all are created. */
MC_API mc_status mc_communicator_create_all(const mc_context* contexts, int32_t count,
                                            mc_communicator* communicators);
/* NULL is a no-op. A layer created with the communicator keeps it alive until the layer is destroyed. */
MC_API mc_status mc_communicator_destroy(mc_communicator communicator);
MC_API mc_status mc_communicator_get_info(mc_communicator communicator, mc_communicator_info* info);

/* mc_moe_layer_parallel_desc.mode */
#define MC_PARALLEL_TENSOR 1  /* every rank holds every expert with a 1/W slice of I; all-reduce of fp32 partials */
#define MC_PARALLEL_EXPERT 2  /* rank r holds experts r E/W .. (r+1) E/W - 1; all-gather, reduce-scatter */

/* How a layer is split across the communicator's W ranks. mc_moe_layer_desc keeps its per-rank meaning:
   - MC_PARALLEL_TENSOR: desc->inter is the rank's slice I/W and must be a multiple of 128 (the 128x128 weight
     scale blocks are not split); first_expert = 0 and local_experts = total_experts; the weights are rows
     [r I/W, (r+1) I/W) of the gate and of the up projection (w13 [E, 2 I/W, H], gate slice first) and the same
     columns of w2 ([E, H, I/W]). A forward call takes all T tokens on every rank and writes the whole [T, H] sum.
     tokens_per_rank must be 0.
   - MC_PARALLEL_EXPERT: total_experts % W == 0, local_experts = total_experts / W, first_expert = r local_experts.
     Every rank passes up to tokens_per_rank (1 .. desc->max_tokens) of its own tokens, the same tokens_per_rank on
     every rank; a forward call's args->tokens (0 .. tokens_per_rank) rows are padded with zero rows to
     tokens_per_rank, all-gathered, run through the rank's experts, reduce-scattered, and the rank's args->tokens
     rows written. W * tokens_per_rank * top_k must not exceed MC_MAX_ROWS.
   Forward calls of a parallel layer are collective: every rank must make the same sequence of them (in the same
   order, on each rank's stream); they stay capturable into a CUDA graph (no host synchronisation). */
typedef struct mc_moe_layer_parallel_desc {
  uint32_t struct_size;
  int32_t mode;                  /* MC_PARALLEL_TENSOR or MC_PARALLEL_EXPERT */
  mc_communicator communicator;  /* of the layer's context (else MC_STATUS_CONTEXT_MISMATCH) */
  int32_t tokens_per_rank;       /* MC_PARALLEL_EXPERT: the padded T_r; MC_PARALLEL_TENSOR: 0 */
} mc_moe_layer_parallel_desc;

/* mc_moe_layer_create for one rank of a parallel layer (the weights are the rank's slice, see above). The layer is
   then used with mc_moe_layer_forward, _forward_timed (the events time the rank's own stages; the collectives
   follow event 7), _get_info and _destroy as any layer. */
MC_API mc_status mc_moe_layer_create_parallel(mc_context context, const mc_moe_layer_desc* desc,
                                              const mc_moe_layer_parallel_desc* parallel,
                                              const mc_moe_layer_weights* weights, mc_moe_layer* layer);

#ifdef __cplusplus
}
#endif

#endif /* MOECUTLASS_MOECUTLASS_H */
