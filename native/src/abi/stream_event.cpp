// Streams and events. Destroying NULL is a no-op for every handle type, as for contexts.
#include "abi/common.hpp"
#include "abi/guard.hpp"
#include "core/validate.hpp"

using namespace moecutlass;

extern "C" {

MC_API mc_status mc_stream_create(mc_context context, mc_stream* stream) {
  return guard("mc_stream_create", [&] {
    std::shared_ptr<Context> object = resolve<Context>(context, "context");
    require_not_null(stream, "stream");
    object->require_usable();
    auto created = std::make_shared<Stream>(object, object->backend().create_stream());
    *stream = reinterpret_cast<mc_stream>(Registry::instance().add(created));
  });
}

MC_API mc_status mc_stream_destroy(mc_stream stream) {
  return guard("mc_stream_destroy", [&] {
    if (stream == nullptr) return;
    // take, not resolve + remove: of two threads destroying the same handle, exactly one succeeds.
    take<Stream>(stream, "stream");
  });
}

MC_API mc_status mc_stream_synchronize(mc_stream stream) {
  return guard("mc_stream_synchronize", [&] {
    std::shared_ptr<Stream> object = resolve<Stream>(stream, "stream");
    object->context().require_usable();
    if (object->context().backend().is_capturing(object->impl())) {
      fail(MC_STATUS_INVALID_ARGUMENT, "stream = ", pointer_text(stream),
           " cannot be synchronized: the stream is capturing a CUDA graph (mc_stream_begin_capture), and waiting for ",
           "it would invalidate the capture; end the capture first (mc_stream_end_capture)");
    }
    object->impl().synchronize();
  });
}

MC_API mc_status mc_stream_get_native(mc_stream stream, void** native_stream) {
  return guard("mc_stream_get_native", [&] {
    std::shared_ptr<Stream> object = resolve<Stream>(stream, "stream");
    require_not_null(native_stream, "native_stream");
    object->context().require_usable();
    *native_stream = object->impl().native_handle();
  });
}

MC_API mc_status mc_event_create(mc_context context, mc_event* event) {
  return guard("mc_event_create", [&] {
    std::shared_ptr<Context> object = resolve<Context>(context, "context");
    require_not_null(event, "event");
    object->require_usable();
    auto created = std::make_shared<Event>(object, object->backend().create_event());
    *event = reinterpret_cast<mc_event>(Registry::instance().add(created));
  });
}

MC_API mc_status mc_event_destroy(mc_event event) {
  return guard("mc_event_destroy", [&] {
    if (event == nullptr) return;
    // take, not resolve + remove: of two threads destroying the same handle, exactly one succeeds.
    take<Event>(event, "event");
  });
}

MC_API mc_status mc_event_record(mc_event event, mc_stream stream) {
  return guard("mc_event_record", [&] {
    std::shared_ptr<Event> object = resolve<Event>(event, "event");
    Context& context = object->context();
    std::shared_ptr<Stream> keep;
    BackendStream& queue = resolve_stream(stream, context, keep, "stream");
    context.require_usable();
    object->impl().record(queue);
    object->mark_recorded();
  });
}

MC_API mc_status mc_event_synchronize(mc_event event) {
  return guard("mc_event_synchronize", [&] {
    std::shared_ptr<Event> object = resolve<Event>(event, "event");
    object->context().require_usable();
    object->impl().synchronize();
  });
}

MC_API mc_status mc_event_query(mc_event event) {
  return guard("mc_event_query", [&]() -> mc_status {
    std::shared_ptr<Event> object = resolve<Event>(event, "event");
    object->context().require_usable();
    return object->impl().query() ? MC_STATUS_OK : MC_STATUS_NOT_READY;
  });
}

MC_API mc_status mc_event_elapsed_ms(mc_event start, mc_event end, float* milliseconds) {
  return guard("mc_event_elapsed_ms", [&] {
    std::shared_ptr<Event> first = resolve<Event>(start, "start");
    std::shared_ptr<Event> last = resolve<Event>(end, "end");
    require_not_null(milliseconds, "milliseconds");
    require_same_context(*last, first->context(), "end", "the context of start");
    first->context().require_usable();
    if (!first->recorded()) {
      fail(MC_STATUS_INVALID_ARGUMENT, "start = ", pointer_text(start), " was never recorded (mc_event_record)");
    }
    if (!last->recorded()) {
      fail(MC_STATUS_INVALID_ARGUMENT, "end = ", pointer_text(end), " was never recorded (mc_event_record)");
    }
    *milliseconds = last->impl().elapsed_ms_since(first->impl());
  });
}

}  // extern "C"
