// The CPU backend's MoE layer stages call the host references directly: the CPU backend *is* the reference, so
// its layer is the CUDA layer's specification. Context memory is host memory, so the row count that a device stage
// would read from offsets[local_experts] on the device is read here directly.
#include "cpu/cpu_moe_stages.hpp"

#include "core/moe_permutation.hpp"
#include "core/moe_routing.hpp"
#include "cpu/moe_combine.hpp"
#include "cpu/moe_gather_quantize.hpp"
#include "cpu/moe_silu_and_mul.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass {

namespace {

class CpuMoeStages final : public MoeLayerStages {
 public:
  void route(const MoeRouteJob& job, BackendStream&) override {
    route_topk(job.logits, job.logits_dtype, job.tokens, job.experts, job.top_k, job.renormalize, job.ids,
               job.weights);
  }

  void permute(const MoePermuteJob& job, BackendStream&) override {
    ExpertSlice slice;
    slice.first = job.first_expert;
    slice.local_experts = job.local_experts;
    slice.total_experts = job.total_experts;
    permute_by_expert(job.ids, job.tokens, job.top_k, slice, job.offsets, job.sorted_slots, job.slot_to_row);
  }

  void gather_quantize(const MoeGatherJob& job, BackendStream&) override {
    gather_quantize_rows(job.hidden, job.hidden_dtype, job.tokens, job.hidden_size, job.sorted_slots,
                         job.offsets[job.local_experts], job.top_k, job.out, job.scales);
  }

  void activate_quantize(const MoeActivationJob& job, BackendStream&) override {
    silu_and_mul_quantize(job.gemm1_out, MC_DTYPE_BF16, job.offsets[job.local_experts], job.inter, job.out,
                          job.scales);
  }

  void combine(const MoeCombineJob& job, BackendStream&) override {
    // The row count only bounds the slot_to_row entries, which permute wrote for this very layout.
    const int64_t rows = static_cast<int64_t>(job.tokens) * job.top_k;
    weighted_combine(job.gemm2_out, MC_DTYPE_BF16, rows, job.hidden_size, job.weights, job.slot_to_row, job.tokens,
                     job.top_k, job.output, job.output_dtype);
  }
};

}  // namespace

std::unique_ptr<MoeLayerStages> make_cpu_moe_stages() { return std::make_unique<CpuMoeStages>(); }

}  // namespace moecutlass
