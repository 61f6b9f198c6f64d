// Host time of one grouped-GEMM run, taken apart: what the CUDA launches cost by themselves against what a whole
// mc_grouped_gemm_run costs (validation, precompute launch, GEMM launch). Not a test: a measuring tool for the
// "host time per run <= 10 us" goal, built with the native tests when CUDA is on. Prints medians over many calls.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include <cuda_runtime.h>

#include "moecutlass/moecutlass.h"

namespace {

__global__ void empty_kernel() {}

void check(cudaError_t error, const char* what) {
  if (error != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(error));
    std::exit(1);
  }
}

void check(mc_status status, const char* what) {
  if (status != MC_STATUS_OK) {
    const char* message = "";
    mc_get_last_error(&message);
    std::fprintf(stderr, "%s: %s\n", what, message);
    std::exit(1);
  }
}

// Median host microseconds per call; the stream is drained every 256 calls so the launch queue never fills.
double median_us(const std::function<void()>& call, const std::function<void()>& drain, int calls = 4000) {
  std::vector<double> samples;
  samples.reserve(calls);
  for (int i = 0; i < calls + 200; ++i) {
    if (i % 256 == 0) drain();
    const auto start = std::chrono::steady_clock::now();
    call();
    const auto stop = std::chrono::steady_clock::now();
    if (i >= 200) samples.push_back(std::chrono::duration<double, std::micro>(stop - start).count());
  }
  drain();
  std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
  return samples[samples.size() / 2];
}

}  // namespace

int main() {
  cudaStream_t stream = nullptr;
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  auto drain_stream = [&] { check(cudaStreamSynchronize(stream), "cudaStreamSynchronize"); };

  std::printf("%-58s %8s\n", "call", "host us");
  std::printf("%-58s %8.2f\n", "empty kernel <<<1, 128>>>",
              median_us([&] { empty_kernel<<<1, 128, 0, stream>>>(); }, drain_stream));
  {
    cudaLaunchConfig_t config = {};
    config.gridDim = dim3(1);
    config.blockDim = dim3(128);
    config.stream = stream;
    void* arguments[] = {nullptr};
    std::printf("%-58s %8.2f\n", "empty kernel, cudaLaunchKernelExC, no attributes",
                median_us([&] { check(cudaLaunchKernelExC(&config, (const void*)empty_kernel, arguments), "launch"); },
                          drain_stream));
  }
  for (int variant = 0; variant < 2; ++variant) {
    cudaLaunchAttribute attributes[2] = {};
    attributes[0].id = cudaLaunchAttributeClusterDimension;
    attributes[0].val.clusterDim.x = 1;
    attributes[0].val.clusterDim.y = 2;
    attributes[0].val.clusterDim.z = 1;
    attributes[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attributes[1].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t config = {};
    config.gridDim = dim3(1, 2, 1);
    config.blockDim = dim3(128, 1, 1);
    config.stream = stream;
    config.attrs = attributes;
    config.numAttrs = variant == 0 ? 1 : 2;
    void* arguments[] = {nullptr};
    std::printf("%-58s %8.2f\n",
                variant == 0 ? "empty kernel, cudaLaunchKernelExC, cluster 1x2"
                             : "empty kernel, cudaLaunchKernelExC, cluster 1x2 + programmatic",
                median_us([&] { check(cudaLaunchKernelExC(&config, (const void*)empty_kernel, arguments), "launch"); },
                          drain_stream));
  }

  // A whole run through the C ABI on a small problem (E=8, N=K=256, 64 rows).
  mc_context_desc desc{};
  desc.struct_size = sizeof desc;
  desc.backend = MC_BACKEND_CUDA;
  mc_context context = nullptr;
  check(mc_context_create(&desc, &context), "mc_context_create");
  mc_stream run_stream = nullptr;
  check(mc_stream_create(context, &run_stream), "mc_stream_create");
  const int experts = 8, n = 256, k = 256, rows = 64;
  void *a, *as, *b, *bs, *offsets, *d;
  check(mc_malloc(context, int64_t{rows} * k, &a), "malloc");
  check(mc_malloc(context, int64_t{rows} * 2 * 4, &as), "malloc");
  check(mc_malloc(context, int64_t{experts} * n * k, &b), "malloc");
  check(mc_malloc(context, int64_t{experts} * 2 * 2 * 4, &bs), "malloc");
  check(mc_malloc(context, (experts + 1) * 4, &offsets), "malloc");
  check(mc_malloc(context, int64_t{rows} * n * 2, &d), "malloc");
  std::vector<int32_t> host_offsets(experts + 1);
  for (int e = 0; e <= experts; ++e) host_offsets[e] = e * rows / experts;
  check(mc_memcpy_async(context, offsets, host_offsets.data(), (experts + 1) * 4, MC_COPY_HOST_TO_DEVICE, run_stream),
        "memcpy");
  uint8_t zero = 0;
  check(mc_fill_async(context, a, &zero, 1, int64_t{rows} * k, run_stream), "fill");
  check(mc_fill_async(context, b, &zero, 1, int64_t{experts} * n * k, run_stream), "fill");
  auto drain_run = [&] { check(mc_stream_synchronize(run_stream), "mc_stream_synchronize"); };
  for (int32_t dtype : {MC_DTYPE_BF16, MC_DTYPE_FP16}) {
    mc_grouped_gemm_desc plan_desc{};
    plan_desc.struct_size = sizeof plan_desc;
    plan_desc.experts = experts;
    plan_desc.n = n;
    plan_desc.k = k;
    plan_desc.output_dtype = dtype;
    plan_desc.strategy = MC_STRATEGY_SINGLE;
    plan_desc.max_rows = rows;
    mc_grouped_gemm_plan plan = nullptr;
    check(mc_grouped_gemm_plan_create(context, &plan_desc, &plan), "plan");
    mc_grouped_gemm_args args{};
    args.struct_size = sizeof args;
    args.rows = rows;
    args.a = a;
    args.a_scales = static_cast<const float*>(as);
    args.b = b;
    args.b_scales = static_cast<const float*>(bs);
    args.expert_offsets = static_cast<const int32_t*>(offsets);
    args.d = d;
    std::printf("%-58s %8.2f\n", dtype == MC_DTYPE_BF16 ? "mc_grouped_gemm_run (bf16, precompute + GEMM)"
                                                        : "mc_grouped_gemm_run (fp16, precompute + GEMM)",
                median_us([&] { check(mc_grouped_gemm_run(plan, &args, run_stream), "run"); }, drain_run));
    check(mc_grouped_gemm_plan_destroy(plan), "plan destroy");
  }
  const char* pdl = std::getenv("MOECUTLASS_PDL");
  std::printf("(programmatic launch of the GEMM: %s)\n", pdl != nullptr && pdl[0] == '0' ? "off" : "on when built with GDC");
  check(mc_context_destroy(context), "mc_context_destroy");
  check(cudaStreamDestroy(stream), "cudaStreamDestroy");
  return 0;
}
