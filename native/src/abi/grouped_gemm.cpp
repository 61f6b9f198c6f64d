// Grouped-GEMM plans: creation (descriptor validation), info and runs (operand validation, then the backend).
#include <cstddef>
#include <cstring>

#include "abi/common.hpp"
#include "abi/guard.hpp"
#include "core/shapes.hpp"
#include "core/validate.hpp"

using namespace moecutlass;

extern "C" {

MC_API mc_status mc_grouped_gemm_plan_create(mc_context context, const mc_grouped_gemm_desc* desc,
                                             mc_grouped_gemm_plan* plan) {
  return guard("mc_grouped_gemm_plan_create", [&] {
    std::shared_ptr<Context> object = resolve<Context>(context, "context");
    require_not_null(desc, "desc");
    // The descriptor grew bucket_max_rows; callers built against the smaller struct keep working.
    constexpr std::size_t kSizeBeforeBuckets = offsetof(mc_grouped_gemm_desc, bucket_max_rows);
    const bool has_buckets = desc->struct_size == sizeof(mc_grouped_gemm_desc);
    if (!has_buckets) {
      require_struct_size(desc->struct_size, kSizeBeforeBuckets, "mc_grouped_gemm_desc", "desc->struct_size");
    }
    require_not_null(plan, "plan");
    require_experts(desc->experts, "desc->experts");
    require_n(desc->n, "desc->n");
    require_k(desc->k, "desc->k");
    if (desc->output_dtype != MC_DTYPE_BF16 && desc->output_dtype != MC_DTYPE_FP16) {
      fail(MC_STATUS_INVALID_DTYPE, "desc->output_dtype = ", desc->output_dtype,
           " is not MC_DTYPE_BF16 (2) or MC_DTYPE_FP16 (3)");
    }
    if (desc->strategy != MC_STRATEGY_AUTO && desc->strategy != MC_STRATEGY_SINGLE &&
        desc->strategy != MC_STRATEGY_EXPERT_SPECIALIZED) {
      fail(MC_STATUS_INVALID_STRATEGY, "desc->strategy = ", desc->strategy,
           " is not MC_STRATEGY_AUTO (0), MC_STRATEGY_SINGLE (1) or MC_STRATEGY_EXPERT_SPECIALIZED (2)");
    }
    require_range(desc->max_rows, 0, MC_MAX_ROWS, "desc->max_rows", "0 .. 2147483647 (MC_MAX_ROWS)");
    int32_t buckets[MC_MAX_BUCKETS] = {0, 0, 0, 0};
    if (has_buckets) {
      for (int i = 0; i < MC_MAX_BUCKETS; ++i) buckets[i] = desc->bucket_max_rows[i];
      for (int i = 2; i < MC_MAX_BUCKETS; ++i) {
        if (buckets[i] != 0) {
          fail(MC_STATUS_INVALID_ARGUMENT, "desc->bucket_max_rows[", i, "] = ", buckets[i],
               " is reserved: this library has two swapped configurations, so entries 2 and 3 must be 0");
        }
      }
      if ((buckets[0] == 0) != (buckets[1] == 0)) {
        fail(MC_STATUS_INVALID_ARGUMENT, "desc->bucket_max_rows = {", buckets[0], ", ", buckets[1],
             "}: give both swapped thresholds or neither (0, 0 = the GPU-class table)");
      }
      if (buckets[0] > 0 && buckets[1] > 0 && buckets[1] < buckets[0]) {
        fail(MC_STATUS_INVALID_ARGUMENT, "desc->bucket_max_rows[1] = ", buckets[1], " is below desc->bucket_max_rows[0] = ",
             buckets[0], "; the thresholds must not decrease");
      }
    }
    object->require_usable();
    GroupedGemmShape shape;
    shape.experts = desc->experts;
    shape.n = desc->n;
    shape.k = desc->k;
    shape.output_dtype = desc->output_dtype;
    shape.strategy = desc->strategy;
    shape.max_rows = desc->max_rows;
    for (int i = 0; i < MC_MAX_BUCKETS; ++i) shape.bucket_max_rows[i] = buckets[i];
    auto created = std::make_shared<Plan>(object, shape, object->backend().create_grouped_gemm_plan(shape));
    *plan = reinterpret_cast<mc_grouped_gemm_plan>(Registry::instance().add(created));
  });
}

MC_API mc_status mc_grouped_gemm_plan_destroy(mc_grouped_gemm_plan plan) {
  return guard("mc_grouped_gemm_plan_destroy", [&] {
    if (plan == nullptr) return;
    std::shared_ptr<Plan> object = resolve<Plan>(plan, "plan");
    Registry::instance().remove(object->handle());
  });
}

MC_API mc_status mc_grouped_gemm_plan_get_info(mc_grouped_gemm_plan plan, mc_grouped_gemm_plan_info* info) {
  return guard("mc_grouped_gemm_plan_get_info", [&] {
    std::shared_ptr<Plan> object = resolve<Plan>(plan, "plan");
    require_not_null(info, "info");
    require_struct_size(info->struct_size, sizeof(mc_grouped_gemm_plan_info), "mc_grouped_gemm_plan_info",
                        "info->struct_size");
    const GroupedGemmPlanDetails details = object->impl().details();
    mc_grouped_gemm_plan_info out{};
    out.struct_size = sizeof(mc_grouped_gemm_plan_info);
    out.strategy = object->shape().strategy;
    out.backend = object->context().backend().kind();
    out.kernel_count = details.kernel_count;
    out.workspace_bytes = details.workspace_bytes;
    copy_text(out.kernels, details.kernels.c_str());
    *info = out;
  });
}

MC_API mc_status mc_grouped_gemm_plan_resolve_strategy(mc_grouped_gemm_plan plan, int32_t rows, int32_t* strategy) {
  return guard("mc_grouped_gemm_plan_resolve_strategy", [&] {
    std::shared_ptr<Plan> object = resolve<Plan>(plan, "plan");
    require_not_null(strategy, "strategy");
    if (rows < 0 || rows > object->shape().max_rows) {
      fail(MC_STATUS_OUT_OF_RANGE, "rows = ", rows, " is outside 0 .. ", object->shape().max_rows,
           " (the plan's max_rows)");
    }
    *strategy = object->impl().resolved_strategy(rows);
  });
}

MC_API mc_status mc_grouped_gemm_run(mc_grouped_gemm_plan plan, const mc_grouped_gemm_args* args, mc_stream stream) {
  return guard("mc_grouped_gemm_run", [&] {
    std::shared_ptr<Plan> object = resolve<Plan>(plan, "plan");
    require_not_null(args, "args");
    require_struct_size(args->struct_size, sizeof(mc_grouped_gemm_args), "mc_grouped_gemm_args",
                        "args->struct_size");
    const GroupedGemmShape& shape = object->shape();
    if (args->rows < 0 || args->rows > shape.max_rows) {
      fail(MC_STATUS_OUT_OF_RANGE, "args->rows = ", args->rows, " is outside 0 .. ", shape.max_rows,
           " (the plan's max_rows)");
    }
    require_tensor_pointer(args->a, "args->a");
    require_tensor_pointer(args->a_scales, "args->a_scales");
    require_tensor_pointer(args->b, "args->b");
    require_tensor_pointer(args->b_scales, "args->b_scales");
    require_tensor_pointer(args->d, "args->d");
    // Offsets are read as int32 scalars; 4-byte alignment is all any reader needs.
    require_not_null(args->expert_offsets, "args->expert_offsets");
    require_aligned(args->expert_offsets, 4, "args->expert_offsets", "int32 alignment");

    Context& context = object->context();
    std::shared_ptr<Stream> keep;
    BackendStream& queue = resolve_stream(stream, context, keep, "stream");
    context.require_usable();

    const int64_t rows = args->rows;
    const AllocationTracker& allocations = context.allocations();
    allocations.check(args->a, activation_bytes(rows, shape.k), "args->a");
    allocations.check(args->a_scales, activation_scale_bytes(rows, shape.k), "args->a_scales");
    allocations.check(args->b, weight_bytes(shape.experts, shape.n, shape.k), "args->b");
    allocations.check(args->b_scales, weight_scale_bytes(shape.experts, shape.n, shape.k), "args->b_scales");
    allocations.check(args->expert_offsets, offsets_bytes(shape.experts), "args->expert_offsets");
    allocations.check(args->d, rows * shape.n * 2, "args->d");  // bf16 and fp16 are both 2 bytes

    // Host-readable offsets are checked exactly here, before any output is written; device backends clamp them
    // on the device and raise the context's device error flag instead (DESIGN.md section 3).
    if (context.backend().host_accessible_memory()) {
      require_valid_offsets(args->expert_offsets, shape.experts, args->rows, "args->expert_offsets");
    }

    GroupedGemmOperands operands;
    operands.rows = args->rows;
    operands.a = static_cast<const uint8_t*>(args->a);
    operands.a_scales = args->a_scales;
    operands.b = static_cast<const uint8_t*>(args->b);
    operands.b_scales = args->b_scales;
    operands.expert_offsets = args->expert_offsets;
    operands.d = args->d;
    object->impl().run(operands, queue);
  });
}

}  // extern "C"
