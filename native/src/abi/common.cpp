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

BackendStream& resolve_stream(mc_stream stream, Context& context, std::shared_ptr<Stream>& keep,
                              const char* argument) {
  if (stream == nullptr) return context.backend().default_stream();
  keep = resolve<Stream>(stream, argument);
  require_same_context(*keep, context, argument, "the context");
  return keep->impl();
}

}  // namespace moecutlass
