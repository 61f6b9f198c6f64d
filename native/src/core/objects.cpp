#include "core/objects.hpp"

#include "core/error.hpp"

namespace moecutlass {

const char* handle_type_name(HandleKind kind) {
  switch (kind) {
    case HandleKind::Context: return "mc_context";
    case HandleKind::Stream: return "mc_stream";
    case HandleKind::Event: return "mc_event";
    case HandleKind::Plan: return "mc_grouped_gemm_plan";
    case HandleKind::Graph: return "mc_graph";
    case HandleKind::MoeLayer: return "mc_moe_layer";
    case HandleKind::Communicator: return "mc_communicator";
  }
  return "handle";
}

Context::Context(std::unique_ptr<Backend> backend) : Object(kKind), backend_(std::move(backend)) {}

Context::~Context() {
  for (const AllocationTracker::Range& range : allocations_.take_all()) {
    backend_->release(reinterpret_cast<void*>(range.base));
  }
}

void Context::require_usable() const {
  if (backend_->faulted()) {
    fail(MC_STATUS_DEVICE_FAULT, "context ", pointer_text(reinterpret_cast<const void*>(handle())),
         " hit a sticky device error earlier and is unusable; destroy it (mc_context_destroy) and create a new one");
  }
}

Plan::RunScope::RunScope(Plan& plan) : plan_(plan) {
  if (plan.running_.exchange(true, std::memory_order_acq_rel)) {
    fail(MC_STATUS_BUSY, "plan = ", pointer_text(reinterpret_cast<const void*>(plan.handle())),
         " is already running: another thread's mc_grouped_gemm_run of this plan has not returned. Runs of one "
         "plan must not overlap (its per-run device arrays are shared); order them, or use one plan per stream");
  }
}

MoeLayer::ForwardScope::ForwardScope(MoeLayer& layer) : layer_(layer) {
  if (layer.running_.exchange(true, std::memory_order_acq_rel)) {
    fail(MC_STATUS_BUSY, "layer = ", pointer_text(reinterpret_cast<const void*>(layer.handle())),
         " is already running: another thread's mc_moe_layer_forward of this layer has not returned. Forward calls "
         "of one layer must not overlap (its workspace is shared); order them, or use one layer per stream");
  }
}

Communicator::~Communicator() {
  if (comm_ == nullptr || destroy_ == nullptr) return;
  try {
    // Never throws out of a destructor; a failed destroy (a faulted device) leaves nothing more to release.
    context().backend().run_on_device([this] { (void)destroy_(comm_); });
  } catch (...) {
  }
}

}  // namespace moecutlass
