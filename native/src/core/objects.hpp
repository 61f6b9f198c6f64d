// The library objects behind the opaque handles: contexts and the streams, events, plans and graphs they own.
//
// Children hold a shared_ptr to their context, so a call that is using a stream keeps the context (and its
// backend) alive even if another thread destroys the context at the same moment; the registry (registry.hpp)
// is what makes a destroyed handle invalid for every later call.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>

#include "backend.hpp"
#include "core/allocation_tracker.hpp"
#include "core/moe_layer.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass {

enum class HandleKind : uint8_t { Context, Stream, Event, Plan, Graph, MoeLayer };

const char* handle_type_name(HandleKind kind);  // "mc_context", ...

class Object {
 public:
  explicit Object(HandleKind kind) : kind_(kind) {}
  virtual ~Object() = default;
  Object(const Object&) = delete;
  Object& operator=(const Object&) = delete;

  HandleKind kind() const { return kind_; }
  // The opaque value handed to the caller; assigned once by the registry.
  std::uintptr_t handle() const { return handle_; }
  void set_handle(std::uintptr_t handle) { handle_ = handle; }

 private:
  HandleKind kind_;
  std::uintptr_t handle_ = 0;
};

class Context final : public Object {
 public:
  static constexpr HandleKind kKind = HandleKind::Context;

  explicit Context(std::unique_ptr<Backend> backend);
  ~Context() override;  // frees the allocations still live

  Backend& backend() { return *backend_; }
  const Backend& backend() const { return *backend_; }
  AllocationTracker& allocations() { return allocations_; }
  const AllocationTracker& allocations() const { return allocations_; }

  bool usable() const { return !backend_->faulted(); }
  // Throws MC_STATUS_DEVICE_FAULT once a sticky device error has been seen.
  void require_usable() const;

 private:
  std::unique_ptr<Backend> backend_;
  AllocationTracker allocations_;
};

// Base of the objects a context owns.
class ContextChild : public Object {
 public:
  ContextChild(HandleKind kind, std::shared_ptr<Context> context) : Object(kind), context_(std::move(context)) {}
  Context& context() const { return *context_; }
  const std::shared_ptr<Context>& context_ptr() const { return context_; }

 private:
  std::shared_ptr<Context> context_;  // declared first: destroyed after the derived class's backend objects
};

class Stream final : public ContextChild {
 public:
  static constexpr HandleKind kKind = HandleKind::Stream;
  Stream(std::shared_ptr<Context> context, std::unique_ptr<BackendStream> impl)
      : ContextChild(kKind, std::move(context)), impl_(std::move(impl)) {}
  BackendStream& impl() { return *impl_; }

 private:
  std::unique_ptr<BackendStream> impl_;
};

class Event final : public ContextChild {
 public:
  static constexpr HandleKind kKind = HandleKind::Event;
  Event(std::shared_ptr<Context> context, std::unique_ptr<BackendEvent> impl)
      : ContextChild(kKind, std::move(context)), impl_(std::move(impl)) {}
  BackendEvent& impl() { return *impl_; }
  // Tracked here rather than in the backends so elapsed-time on a never-recorded event fails the same way on
  // every backend (CUDA would otherwise report an opaque invalid-handle error).
  bool recorded() const { return recorded_.load(std::memory_order_acquire); }
  void mark_recorded() { recorded_.store(true, std::memory_order_release); }

 private:
  std::unique_ptr<BackendEvent> impl_;
  std::atomic<bool> recorded_{false};
};

class Plan final : public ContextChild {
 public:
  static constexpr HandleKind kKind = HandleKind::Plan;
  Plan(std::shared_ptr<Context> context, const GroupedGemmShape& shape, std::unique_ptr<GroupedGemmPlanImpl> impl)
      : ContextChild(kKind, std::move(context)), shape_(shape), impl_(std::move(impl)) {}
  const GroupedGemmShape& shape() const { return shape_; }
  GroupedGemmPlanImpl& impl() { return *impl_; }

  // Marks the plan running for the lifetime of a RunScope; a second scope while one is open throws MC_STATUS_BUSY
  // (the per-run arrays, fork event and side streams of a plan are shared between its runs).
  class RunScope {
   public:
    explicit RunScope(Plan& plan);
    ~RunScope() { plan_.running_.store(false, std::memory_order_release); }
    RunScope(const RunScope&) = delete;
    RunScope& operator=(const RunScope&) = delete;

   private:
    Plan& plan_;
  };

 private:
  std::atomic<bool> running_{false};
  GroupedGemmShape shape_;
  std::unique_ptr<GroupedGemmPlanImpl> impl_;
};

// An executable CUDA graph from mc_stream_end_capture.
class Graph final : public ContextChild {
 public:
  static constexpr HandleKind kKind = HandleKind::Graph;
  Graph(std::shared_ptr<Context> context, std::unique_ptr<BackendGraph> impl)
      : ContextChild(kKind, std::move(context)), impl_(std::move(impl)) {}
  BackendGraph& impl() { return *impl_; }

 private:
  std::unique_ptr<BackendGraph> impl_;
};

// A whole MoE layer (mc_moe_layer_create): the pipeline with its workspace and grouped-GEMM plans.
class MoeLayer final : public ContextChild {
 public:
  static constexpr HandleKind kKind = HandleKind::MoeLayer;
  MoeLayer(std::shared_ptr<Context> context, std::unique_ptr<MoeLayerPipeline> pipeline)
      : ContextChild(kKind, std::move(context)), pipeline_(std::move(pipeline)) {}
  MoeLayerPipeline& pipeline() { return *pipeline_; }

  // As Plan::RunScope: forward calls of one layer share its workspace and plans, so they must not overlap.
  class ForwardScope {
   public:
    explicit ForwardScope(MoeLayer& layer);
    ~ForwardScope() { layer_.running_.store(false, std::memory_order_release); }
    ForwardScope(const ForwardScope&) = delete;
    ForwardScope& operator=(const ForwardScope&) = delete;

   private:
    MoeLayer& layer_;
  };

 private:
  std::atomic<bool> running_{false};
  std::unique_ptr<MoeLayerPipeline> pipeline_;
};

}  // namespace moecutlass
