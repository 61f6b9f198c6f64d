#include "abi/common.hpp"

namespace moecutlass {

void require_same_context(const ContextChild& child, const Context& context, const char* argument,
                          const char* context_argument) {
  if (&child.context() != &context) {
    fail(MC_STATUS_CONTEXT_MISMATCH, argument, " = ", pointer_text(reinterpret_cast<const void*>(child.handle())),
         " belongs to context ", pointer_text(reinterpret_cast<const void*>(child.context().handle())), ", not to ",
         context_argument, " ", pointer_text(reinterpret_cast<const void*>(context.handle())));
  }
}

void require_nccl_cuda_context(const Context& context, const char* argument) {
  if (!kNcclCompiledIn) fail(MC_STATUS_UNSUPPORTED, kBuiltWithoutNccl);
  if (context.backend().kind() != MC_BACKEND_CUDA) {
    fail(MC_STATUS_UNSUPPORTED, argument, " is a context of the CPU backend (MC_BACKEND_CPU), which has no "
         "communicators: NCCL collectives and the parallel MoE layer need a CUDA context (MC_BACKEND_CUDA)");
  }
}

void require_context_memory(const Context& context, const void* pointer, int64_t needed_bytes, const char* argument) {
  const AllocationTracker& allocations = context.allocations();
  if (allocations.check_if_owned(pointer, needed_bytes, argument)) return;
  if (allocations.owned_elsewhere(pointer)) {
    fail(MC_STATUS_INVALID_ARGUMENT, argument, " = ", pointer_text(pointer),
         " lies in an mc_malloc allocation of another context; operands must be memory of context ",
         pointer_text(reinterpret_cast<const void*>(context.handle())), " (copy the data across first)");
  }
  if (context.backend().host_accessible_memory()) {
    fail(MC_STATUS_INVALID_ARGUMENT, argument, " = ", pointer_text(pointer),
         " is not inside an mc_malloc allocation of context ",
         pointer_text(reinterpret_cast<const void*>(context.handle())),
         "; on the CPU backend every device-side operand must be context memory (mc_malloc), so its size can be "
         "checked");
  }
}

void require_not_foreign_context_memory(const Context& context, const void* pointer, int64_t needed_bytes,
                                        const char* argument) {
  const AllocationTracker& allocations = context.allocations();
  if (allocations.check_if_owned(pointer, needed_bytes, argument)) return;
  if (allocations.owned_elsewhere(pointer)) {
    fail(MC_STATUS_INVALID_ARGUMENT, argument, " = ", pointer_text(pointer),
         " lies in an mc_malloc allocation of another context; pass host memory or memory of context ",
         pointer_text(reinterpret_cast<const void*>(context.handle())));
  }
}

BackendStream& resolve_stream(mc_stream stream, Context& context, std::shared_ptr<Stream>& keep,
                              const char* argument) {
  if (stream == nullptr) return context.backend().default_stream();
  keep = resolve<Stream>(stream, argument);
  require_same_context(*keep, context, argument, "the context");
  return keep->impl();
}

}  // namespace moecutlass
