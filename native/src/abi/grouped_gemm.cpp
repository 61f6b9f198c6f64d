// Grouped-GEMM plans: creation (descriptor validation), info and runs (operand validation, then the backend).
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>

#include "abi/common.hpp"
#include "abi/guard.hpp"
#include "core/gemm_selection.hpp"
#include "core/kernel_registry.hpp"
#include "core/shapes.hpp"
#include "core/validate.hpp"

using namespace moecutlass;

extern "C" {

MC_API mc_status mc_grouped_gemm_plan_create(mc_context context, const mc_grouped_gemm_desc* desc,
                                             mc_grouped_gemm_plan* plan) {
  return guard("mc_grouped_gemm_plan_create", [&] {
    std::shared_ptr<Context> object = resolve<Context>(context, "context");
    require_not_null(desc, "desc");
    // The descriptor grew config_count/configs/config_max_rows, then flags; callers built against a smaller struct
    // keep working and get the library's selection and no flags.
    constexpr std::size_t kSizeBeforeConfigs = offsetof(mc_grouped_gemm_desc, config_count);
    constexpr std::size_t kSizeBeforeFlags = offsetof(mc_grouped_gemm_desc, flags);
    const std::size_t size = desc->struct_size;
    if (size != kSizeBeforeConfigs && size != kSizeBeforeFlags) {
      require_struct_size(desc->struct_size, sizeof(mc_grouped_gemm_desc), "mc_grouped_gemm_desc",
                          "desc->struct_size");
    }
    const bool has_configs = size >= kSizeBeforeFlags;
    const int32_t flags = size == sizeof(mc_grouped_gemm_desc) ? desc->flags : 0;
    if ((flags & ~MC_PLAN_STATIC_WEIGHTS) != 0) {
      fail(MC_STATUS_INVALID_ARGUMENT, "desc->flags = ", flags,
           " has bits other than MC_PLAN_STATIC_WEIGHTS (1), the only plan flag this library knows");
    }
    require_not_null(plan, "plan");
    require_experts(desc->experts, "desc->experts");
    require_n(desc->n, "desc->n");
    require_k(desc->k, "desc->k");
    if (desc->output_dtype != MC_DTYPE_BF16 && desc->output_dtype != MC_DTYPE_FP16) {
      fail(MC_STATUS_INVALID_DTYPE, "desc->output_dtype = ", desc->output_dtype,
           " is not MC_DTYPE_BF16 (2) or MC_DTYPE_FP16 (3)");
    }
    require_strategy(desc->strategy, "desc->strategy");
    require_range(desc->max_rows, 0, MC_MAX_ROWS, "desc->max_rows", "0 .. 2147483647 (MC_MAX_ROWS)");
    ConfigOverride request;
    if (has_configs) {
      request.count = desc->config_count;
      const int32_t listed = std::clamp<int32_t>(desc->config_count, 0, kMaxPlanConfigs);
      for (int32_t i = 0; i < listed; ++i) {
        request.configs[i] = desc->configs[i];
        request.max_rows[i] = desc->config_max_rows[i];
      }
      validate_config_override(request, desc->strategy);
      for (int32_t i = 0; i < request.count; ++i) {
        if (!kernel_config_compiled(request.configs[i]) && object->backend().kind() != MC_BACKEND_CPU) {
          fail(MC_STATUS_UNSUPPORTED, "desc->configs[", i, "] = ", request.configs[i], " (",
               kKernelConfigs[request.configs[i]].name, ") is not compiled into this library");
        }
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
    shape.static_weights = (flags & MC_PLAN_STATIC_WEIGHTS) != 0;
    shape.selection = select_plan(desc->strategy, object->backend().selection_device(), desc->n, desc->k, request);
    auto created = std::make_shared<Plan>(object, shape, object->backend().create_grouped_gemm_plan(shape));
    *plan = reinterpret_cast<mc_grouped_gemm_plan>(Registry::instance().add(created));
  });
}

MC_API mc_status mc_grouped_gemm_plan_destroy(mc_grouped_gemm_plan plan) {
  return guard("mc_grouped_gemm_plan_destroy", [&] {
    if (plan == nullptr) return;
    // take, not resolve + remove: of two threads destroying the same handle, exactly one succeeds.
    take<Plan>(plan, "plan");
  });
}

MC_API mc_status mc_grouped_gemm_plan_get_info(mc_grouped_gemm_plan plan, mc_grouped_gemm_plan_info* info) {
  return guard("mc_grouped_gemm_plan_get_info", [&] {
    std::shared_ptr<Plan> object = resolve<Plan>(plan, "plan");
    require_not_null(info, "info");
    require_struct_size(info->struct_size, sizeof(mc_grouped_gemm_plan_info), "mc_grouped_gemm_plan_info",
                        "info->struct_size");
    const GroupedGemmPlanDetails details = object->impl().details();
    const PlanSelection& selection = object->shape().selection;
    mc_grouped_gemm_plan_info out{};
    out.struct_size = sizeof(mc_grouped_gemm_plan_info);
    out.strategy = object->shape().strategy;
    out.backend = object->context().backend().kind();
    out.kernel_count = selection.config_count;
    out.workspace_bytes = details.workspace_bytes;
    std::string names;
    out.config_count = selection.config_count;
    for (int32_t i = 0; i < selection.config_count; ++i) {
      out.configs[i] = selection.configs[i];
      if (!names.empty()) names += ';';
      names += kKernelConfigs[selection.configs[i]].name;
    }
    copy_text(out.kernels, names.c_str());
    copy_text(out.selection, selection.source);
    *info = out;
  });
}

namespace {

LaunchSet resolve_launches(Plan& plan, int32_t rows, const char* argument) {
  if (rows < 0 || rows > plan.shape().max_rows) {
    fail(MC_STATUS_OUT_OF_RANGE, argument, " = ", rows, " is outside 0 .. ", plan.shape().max_rows,
         " (the plan's max_rows)");
  }
  return select_launches(plan.shape().selection, plan.shape().experts, rows);
}

}  // namespace

MC_API mc_status mc_grouped_gemm_plan_resolve_strategy(mc_grouped_gemm_plan plan, int32_t rows, int32_t* strategy) {
  return guard("mc_grouped_gemm_plan_resolve_strategy", [&] {
    std::shared_ptr<Plan> object = resolve<Plan>(plan, "plan");
    require_not_null(strategy, "strategy");
    *strategy = resolve_launches(*object, rows, "rows").strategy;
  });
}

MC_API mc_status mc_grouped_gemm_plan_resolve(mc_grouped_gemm_plan plan, int32_t rows, mc_grouped_gemm_launch* launch) {
  return guard("mc_grouped_gemm_plan_resolve", [&] {
    std::shared_ptr<Plan> object = resolve<Plan>(plan, "plan");
    require_not_null(launch, "launch");
    require_struct_size(launch->struct_size, sizeof(mc_grouped_gemm_launch), "mc_grouped_gemm_launch",
                        "launch->struct_size");
    const LaunchSet set = resolve_launches(*object, rows, "rows");
    mc_grouped_gemm_launch out{};
    out.struct_size = sizeof(mc_grouped_gemm_launch);
    out.strategy = set.strategy;
    out.config_count = set.count;
    for (int32_t i = 0; i < set.count; ++i) {
      out.configs[i] = set.launch[i].config;
      out.min_rows[i] = set.launch[i].first_rows;
      out.max_rows[i] = set.launch[i].last_rows;
    }
    *launch = out;
  });
}

MC_API mc_status mc_get_kernel_config_count(int32_t* count) {
  return guard("mc_get_kernel_config_count", [&] {
    require_not_null(count, "count");
    *count = kKernelConfigCount;
  });
}

MC_API mc_status mc_get_kernel_config_info(int32_t index, mc_kernel_config_info* info) {
  return guard("mc_get_kernel_config_info", [&] {
    if (index < 0 || index >= kKernelConfigCount) {
      fail(MC_STATUS_OUT_OF_RANGE, "index = ", index, " is outside 0 .. ", kKernelConfigCount - 1,
           " (mc_get_kernel_config_count)");
    }
    require_not_null(info, "info");
    require_struct_size(info->struct_size, sizeof(mc_kernel_config_info), "mc_kernel_config_info",
                        "info->struct_size");
    const KernelConfig& config = kKernelConfigs[index];
    mc_kernel_config_info out{};
    out.struct_size = sizeof(mc_kernel_config_info);
    out.index = index;
    out.tile_m = config.tile_m;
    out.tile_n = config.tile_n;
    out.tile_k = config.tile_k;
    out.cluster_m = config.cluster_m;
    out.cluster_n = config.cluster_n;
    out.schedule = static_cast<int32_t>(config.schedule);
    out.swap_ab = config.swap_ab ? 1 : 0;
    out.compiled = kernel_config_compiled(index) ? 1 : 0;
    copy_text(out.name, config.name);
    *info = out;
  });
}

MC_API mc_status mc_find_kernel_config(const char* name, int32_t* index) {
  return guard("mc_find_kernel_config", [&] {
    require_not_null(name, "name");
    require_not_null(index, "index");
    const int32_t found = find_kernel_config(name);
    if (found < 0) {
      std::string known;
      for (const KernelConfig& config : kKernelConfigs) known += str(known.empty() ? "" : ", ", config.name);
      fail(MC_STATUS_INVALID_ARGUMENT, "name = \"", name, "\" is not a kernel configuration (known: ", known, ")");
    }
    *index = found;
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
    require_context_memory(context, args->a, activation_bytes(rows, shape.k), "args->a");
    require_context_memory(context, args->a_scales, activation_scale_bytes(rows, shape.k), "args->a_scales");
    require_context_memory(context, args->b, weight_bytes(shape.experts, shape.n, shape.k), "args->b");
    require_context_memory(context, args->b_scales, weight_scale_bytes(shape.experts, shape.n, shape.k),
                           "args->b_scales");
    require_context_memory(context, args->expert_offsets, offsets_bytes(shape.experts), "args->expert_offsets");
    require_context_memory(context, args->d, rows * shape.n * 2, "args->d");  // bf16 and fp16 are both 2 bytes

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
    const Plan::RunScope running(*object);  // MC_STATUS_BUSY while another thread runs this plan
    object->impl().run(operands, queue);
  });
}

}  // extern "C"
