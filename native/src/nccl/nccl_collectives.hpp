// The parallel MoE layer's collectives (core/moe_parallel.hpp) over an NCCL communicator: ncclAllReduce,
// ncclAllGather (grouped) and ncclReduceScatter on the forward call's stream. Host code: NCCL is called through the
// run-time loader (nccl/nccl_loader.hpp), no header or CUDA compiler needed.
#pragma once

#include <memory>

#include "core/moe_parallel.hpp"
#include "core/objects.hpp"
#include "nccl/nccl_loader.hpp"

namespace moecutlass {

// `communicator` stays alive as long as the returned object.
std::shared_ptr<Collectives> make_nccl_collectives(std::shared_ptr<Communicator> communicator, const nccl::Api& api);

}  // namespace moecutlass
