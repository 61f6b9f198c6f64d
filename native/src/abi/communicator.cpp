// NCCL communicators (issue 16): mc_nccl_get_unique_id, mc_communicator_create / _create_all / _destroy / _get_info.
// Arguments are validated first; then a build without NCCL, or a context that is not a CUDA context, is
// MC_STATUS_UNSUPPORTED naming why (require_nccl_cuda_context); then NCCL is loaded (nccl/nccl_loader.hpp: MC_STATUS_UNSUPPORTED naming what was
// tried when there is none). Nothing is written unless the call succeeds.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "abi/common.hpp"
#include "abi/guard.hpp"
#include "core/validate.hpp"
#include "nccl/nccl_loader.hpp"

using namespace moecutlass;

namespace {

// The most ranks one communicator may have (far beyond any machine this library targets; bounds the arguments).
constexpr int32_t kMaxWorldSize = 65536;

void require_nccl_build() {
  if (!kNcclCompiledIn) fail(MC_STATUS_UNSUPPORTED, kBuiltWithoutNccl);
}

}  // namespace

extern "C" {

MC_API mc_status mc_nccl_get_unique_id(mc_nccl_unique_id* id) {
  return guard("mc_nccl_get_unique_id", [&] {
    require_not_null(id, "id");
    require_struct_size(id->struct_size, sizeof(mc_nccl_unique_id), "mc_nccl_unique_id", "id->struct_size");
    require_nccl_build();
    const nccl::Api& api = nccl::api();
    nccl::UniqueId unique{};
    nccl::check(api, api.get_unique_id(&unique), "ncclGetUniqueId");
    static_assert(sizeof(unique.internal) == sizeof(id->bytes), "mc_nccl_unique_id holds an ncclUniqueId");
    std::memcpy(id->bytes, unique.internal, sizeof(id->bytes));
  });
}

MC_API mc_status mc_communicator_create(mc_context context, const mc_nccl_unique_id* id, int32_t world_size,
                                        int32_t rank, mc_communicator* communicator) {
  return guard("mc_communicator_create", [&] {
    std::shared_ptr<Context> object = resolve<Context>(context, "context");
    require_not_null(id, "id");
    require_struct_size(id->struct_size, sizeof(mc_nccl_unique_id), "mc_nccl_unique_id", "id->struct_size");
    require_range(world_size, 1, kMaxWorldSize, "world_size", "1 .. 65536");
    require_range(rank, 0, world_size - 1, "rank", "0 .. world_size - 1");
    require_not_null(communicator, "communicator");
    require_nccl_cuda_context(*object, "context");
    object->require_usable();
    const nccl::Api& api = nccl::api();
    nccl::UniqueId unique{};
    std::memcpy(unique.internal, id->bytes, sizeof(unique.internal));
    nccl::Comm comm = nullptr;
    object->backend().run_on_device([&] {
      nccl::check(api, api.comm_init_rank(&comm, world_size, unique, rank), "ncclCommInitRank");
    });
    std::shared_ptr<Communicator> created;
    try {
      created = std::make_shared<Communicator>(object, comm, world_size, rank, api.version, api.comm_destroy);
    } catch (...) {
      object->backend().run_on_device([&] { (void)api.comm_destroy(comm); });
      throw;
    }
    *communicator = reinterpret_cast<mc_communicator>(Registry::instance().add(created));
  });
}

MC_API mc_status mc_communicator_create_all(const mc_context* contexts, int32_t count,
                                            mc_communicator* communicators) {
  return guard("mc_communicator_create_all", [&] {
    require_not_null(contexts, "contexts");
    require_range(count, 1, kMaxWorldSize, "count", "1 .. 65536");
    require_not_null(communicators, "communicators");
    std::vector<std::shared_ptr<Context>> objects;
    for (int32_t i = 0; i < count; ++i) {
      const std::string name = "contexts[" + std::to_string(i) + "]";
      objects.push_back(resolve<Context>(contexts[i], name.c_str()));
    }
    std::vector<int> devices;
    for (int32_t i = 0; i < count; ++i) {
      const std::string name = "contexts[" + std::to_string(i) + "]";
      require_nccl_cuda_context(*objects[i], name.c_str());
      const int32_t device = objects[i]->backend().device();
      for (int32_t j = 0; j < i; ++j) {
        if (devices[j] == device) {
          fail(MC_STATUS_INVALID_ARGUMENT, "contexts[", j, "] and contexts[", i, "] are both on CUDA device ", device,
               ": mc_communicator_create_all (ncclCommInitAll) needs one device per rank");
        }
      }
      devices.push_back(device);
    }
    for (const auto& object : objects) object->require_usable();
    const nccl::Api& api = nccl::api();
    std::vector<nccl::Comm> comms(static_cast<std::size_t>(count), nullptr);
    objects[0]->backend().run_on_device([&] {
      nccl::check(api, api.comm_init_all(comms.data(), count, devices.data()), "ncclCommInitAll");
    });
    // Each comm is owned by its Communicator from here on; the ones not yet wrapped are destroyed on failure.
    std::vector<std::shared_ptr<Communicator>> created;
    try {
      for (int32_t i = 0; i < count; ++i) {
        created.push_back(
            std::make_shared<Communicator>(objects[i], comms[i], count, i, api.version, api.comm_destroy));
        comms[i] = nullptr;
      }
    } catch (...) {
      for (int32_t i = 0; i < count; ++i) {
        if (comms[i] != nullptr) objects[i]->backend().run_on_device([&] { (void)api.comm_destroy(comms[i]); });
      }
      throw;
    }
    std::vector<mc_communicator> handles;
    for (const auto& communicator : created) {
      handles.push_back(reinterpret_cast<mc_communicator>(Registry::instance().add(communicator)));
    }
    for (int32_t i = 0; i < count; ++i) communicators[i] = handles[static_cast<std::size_t>(i)];
  });
}

MC_API mc_status mc_communicator_destroy(mc_communicator communicator) {
  return guard("mc_communicator_destroy", [&] {
    if (communicator == nullptr) return;
    take<Communicator>(communicator, "communicator");
  });
}

MC_API mc_status mc_communicator_get_info(mc_communicator communicator, mc_communicator_info* info) {
  return guard("mc_communicator_get_info", [&] {
    std::shared_ptr<Communicator> object = resolve<Communicator>(communicator, "communicator");
    require_not_null(info, "info");
    require_struct_size(info->struct_size, sizeof(mc_communicator_info), "mc_communicator_info",
                        "info->struct_size");
    mc_communicator_info out{};
    out.struct_size = sizeof(mc_communicator_info);
    out.world_size = object->world_size();
    out.rank = object->rank();
    out.device = object->context().backend().device();
    out.nccl_version = object->nccl_version();
    *info = out;
  });
}

}  // extern "C"
