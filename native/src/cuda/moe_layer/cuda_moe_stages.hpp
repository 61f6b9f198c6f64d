// The MoE layer's non-GEMM stages on the CUDA backend (core/moe_layer_stages.hpp): device kernels that compute the
// CPU references' results (route within one fp32 ulp, the rest bit for bit; activate up to expf's last bit).
#pragma once

#include <cstdint>
#include <memory>

#include "backend.hpp"
#include "core/moe_layer_stages.hpp"

namespace moecutlass {

// device: the backend's CUDA device; error_flag: the context's MC_DEVICE_ERROR_* word in device memory (permute
// ORs MC_DEVICE_ERROR_TOPK_ID_* into it); backend: marked faulted on sticky launch errors. All three outlive the
// returned object.
std::unique_ptr<MoeLayerStages> make_cuda_moe_stages(int32_t device, int32_t* error_flag, Backend* backend);

}  // namespace moecutlass
