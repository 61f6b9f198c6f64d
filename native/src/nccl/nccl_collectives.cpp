#include "nccl/nccl_collectives.hpp"

#include <cstddef>
#include <string>

#include "core/error.hpp"

namespace moecutlass {

namespace {

class NcclCollectives final : public Collectives {
 public:
  NcclCollectives(std::shared_ptr<Communicator> communicator, const nccl::Api& api)
      : communicator_(std::move(communicator)), api_(api) {}

  int32_t world_size() const override { return communicator_->world_size(); }
  int32_t rank() const override { return communicator_->rank(); }

  void all_reduce_sum(const float* send, float* recv, int64_t count, BackendStream& stream) override {
    on_device([&] {
      nccl::check(api_, api_.all_reduce(send, recv, static_cast<std::size_t>(count), nccl::kFloat32, nccl::kSum,
                                        communicator_->comm(), stream.native_handle()),
                  "ncclAllReduce");
    });
  }

  void all_gather(const GatherPart* parts, int32_t count, BackendStream& stream) override {
    on_device([&] {
      nccl::check(api_, api_.group_start(), "ncclGroupStart");
      // ncclGroupEnd must follow ncclGroupStart whatever happens in between.
      nccl::Result first_error = nccl::kSuccess;
      const char* failed_call = "ncclAllGather";
      for (int32_t i = 0; i < count && first_error == nccl::kSuccess; ++i) {
        first_error = api_.all_gather(parts[i].send, parts[i].recv, static_cast<std::size_t>(parts[i].bytes),
                                      nccl::kUint8, communicator_->comm(), stream.native_handle());
      }
      const nccl::Result end = api_.group_end();
      if (first_error == nccl::kSuccess && end != nccl::kSuccess) {
        first_error = end;
        failed_call = "ncclGroupEnd (after ncclAllGather)";
      }
      nccl::check(api_, first_error, failed_call);
    });
  }

  void reduce_scatter_sum(const float* send, float* recv, int64_t count, BackendStream& stream) override {
    on_device([&] {
      nccl::check(api_, api_.reduce_scatter(send, recv, static_cast<std::size_t>(count), nccl::kFloat32, nccl::kSum,
                                            communicator_->comm(), stream.native_handle()),
                  "ncclReduceScatter");
    });
  }

 private:
  template <class Body>
  void on_device(Body&& body) {
    communicator_->context().backend().run_on_device(body);
  }

  std::shared_ptr<Communicator> communicator_;
  const nccl::Api& api_;
};

}  // namespace

std::shared_ptr<Collectives> make_nccl_collectives(std::shared_ptr<Communicator> communicator, const nccl::Api& api) {
  return std::make_shared<NcclCollectives>(std::move(communicator), api);
}

}  // namespace moecutlass
