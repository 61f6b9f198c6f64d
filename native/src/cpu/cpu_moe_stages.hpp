// The MoE layer's non-GEMM stages on the CPU backend: the host references themselves (core/moe_layer_stages.hpp).
#pragma once

#include <memory>

#include "core/moe_layer_stages.hpp"

namespace moecutlass {

std::unique_ptr<MoeLayerStages> make_cpu_moe_stages();

}  // namespace moecutlass
