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
#include "core/moe_parallel.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass {

enum class HandleKind : uint8_t { Context, Stream, Event, Plan, Graph, MoeLayer, Communicator };

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

// A whole MoE layer (mc_moe_layer_create): the pipeline with its workspace and grouped-GEMM plans; or one rank of a
// parallel layer (mc_moe_layer_create_parallel), whose pipeline runs inside the collectives.
class MoeLayer final : public ContextChild {
 public:
  static constexpr HandleKind kKind = HandleKind::MoeLayer;
  MoeLayer(std::shared_ptr<Context> context, std::unique_ptr<MoeLayerPipeline> pipeline)
      : ContextChild(kKind, std::move(context)), pipeline_(std::move(pipeline)) {}
  // `communicator` (the Communicator object the collectives use) is held so it outlives the layer.
  MoeLayer(std::shared_ptr<Context> context, std::unique_ptr<ParallelMoeLayer> parallel,
           std::shared_ptr<Object> communicator)
      : ContextChild(kKind, std::move(context)), communicator_(std::move(communicator)),
        parallel_(std::move(parallel)) {}
  ~MoeLayer() override {
    parallel_.reset();  // before the communicator its collectives use
    pipeline_.reset();
  }
  // The grouped-GEMM pipeline (a parallel layer's: the rank's, with fp32 output).
  MoeLayerPipeline& pipeline() { return parallel_ ? parallel_->pipeline() : *pipeline_; }
  // What a forward call is validated against (a parallel EP layer: max_tokens = tokens_per_rank).
  const MoeLayerShape& call_shape() const { return parallel_ ? parallel_->call_shape() : pipeline_->shape(); }
  int64_t workspace_bytes() const { return parallel_ ? parallel_->workspace_bytes() : pipeline_->workspace_bytes(); }
  const ParallelMoeLayer* parallel() const { return parallel_.get(); }
  void forward(const MoeLayerInputs& inputs, BackendStream& stream, BackendEvent* const* events) {
    if (parallel_) {
      parallel_->forward(inputs, stream, events);
    } else {
      pipeline_->forward(inputs, stream, events);
    }
  }

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
  std::shared_ptr<Object> communicator_;
  std::unique_ptr<MoeLayerPipeline> pipeline_;
  std::unique_ptr<ParallelMoeLayer> parallel_;
};

// An NCCL communicator (mc_communicator_create / _create_all): one rank of world_size, bound to its context's
// device. The destructor destroys the NCCL communicator (ncclCommDestroy) on that device.
class Communicator final : public ContextChild {
 public:
  static constexpr HandleKind kKind = HandleKind::Communicator;
  // comm: the ncclComm_t; destroy: the loaded ncclCommDestroy (never null with a comm).
  Communicator(std::shared_ptr<Context> context, void* comm, int32_t world_size, int32_t rank, int32_t nccl_version,
               int (*destroy)(void*))
      : ContextChild(kKind, std::move(context)), comm_(comm), world_size_(world_size), rank_(rank),
        nccl_version_(nccl_version), destroy_(destroy) {}
  ~Communicator() override;
  void* comm() const { return comm_; }
  int32_t world_size() const { return world_size_; }
  int32_t rank() const { return rank_; }
  int32_t nccl_version() const { return nccl_version_; }

 private:
  void* comm_;
  int32_t world_size_;
  int32_t rank_;
  int32_t nccl_version_;
  int (*destroy_)(void*);
};

}  // namespace moecutlass
