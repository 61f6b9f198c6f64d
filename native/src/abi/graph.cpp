// CUDA graphs: capture a stream's work once (mc_stream_begin_capture / mc_stream_end_capture), replay it with one
// launch (mc_graph_launch). Graph handles are context children like streams, events and plans: destroyed with
// their context at the latest.
#include "abi/common.hpp"
#include "abi/guard.hpp"
#include "core/validate.hpp"

using namespace moecutlass;

extern "C" {

MC_API mc_status mc_stream_begin_capture(mc_stream stream) {
  return guard("mc_stream_begin_capture", [&] {
    if (stream == nullptr) {
      fail(MC_STATUS_NULL_POINTER, "stream is NULL: capture needs a stream from mc_stream_create (capturing the ",
           "context's default stream would also capture unrelated library work)");
    }
    std::shared_ptr<Stream> object = resolve<Stream>(stream, "stream");
    Context& context = object->context();
    context.require_usable();
    Backend& backend = context.backend();
    if (backend.is_capturing(object->impl())) {
      fail(MC_STATUS_INVALID_ARGUMENT, "stream = ", pointer_text(stream),
           " is already capturing (mc_stream_begin_capture was called before); end that capture first ",
           "(mc_stream_end_capture)");
    }
    backend.begin_capture(object->impl());
  });
}

MC_API mc_status mc_stream_end_capture(mc_stream stream, mc_graph* graph) {
  return guard("mc_stream_end_capture", [&] {
    std::shared_ptr<Stream> object = resolve<Stream>(stream, "stream");
    require_not_null(graph, "graph");
    Context& context = object->context();
    context.require_usable();
    Backend& backend = context.backend();
    if (!backend.is_capturing(object->impl())) {
      fail(MC_STATUS_INVALID_ARGUMENT, "stream = ", pointer_text(stream),
           " is not capturing (call mc_stream_begin_capture first",
           backend.kind() == MC_BACKEND_CPU ? "; CUDA graphs need the CUDA backend)" : ")");
    }
    std::unique_ptr<BackendGraph> captured = backend.end_capture(object->impl());
    auto created = std::make_shared<Graph>(object->context_ptr(), std::move(captured));
    *graph = reinterpret_cast<mc_graph>(Registry::instance().add(created));
  });
}

MC_API mc_status mc_graph_launch(mc_graph graph, mc_stream stream) {
  return guard("mc_graph_launch", [&] {
    std::shared_ptr<Graph> object = resolve<Graph>(graph, "graph");
    Context& context = object->context();
    std::shared_ptr<Stream> keep;
    BackendStream& queue = resolve_stream(stream, context, keep, "stream");
    context.require_usable();
    object->impl().launch(queue);
  });
}

MC_API mc_status mc_graph_destroy(mc_graph graph) {
  return guard("mc_graph_destroy", [&] {
    if (graph == nullptr) return;
    // take, not resolve + remove: of two threads destroying the same handle, exactly one succeeds.
    take<Graph>(graph, "graph");
  });
}

}  // extern "C"
