// The SM90 FP8 blockwise-scaled grouped GEMM on CUTLASS 4.7, as a template over its configuration. Include it from
// exactly one translation unit per configuration (nvcc spends a minute or more on each).
//
// Mapping of the DeepSeek-V3 data contracts onto CUTLASS (see ../shared/research/cutlass-sm90-blockwise-grouped.md):
//   A  e4m3 [rows, K] row-major           -> A, RowMajor (K-major), per expert A + off[e]*K
//   B  e4m3 [E, N, K] row-major           -> B, ColumnMajor (N x K, K-major), per expert B + e*N*K
//   SA fp32 [rows, ceil(K/128)]           -> SFA, 1x128 granularity, K-major: a per-expert slice of the global tensor
//   SB fp32 [E, ceil(N/128), ceil(K/128)] -> SFB, 128x128 granularity, K-major
//   D  bf16|fp16 [rows, N] row-major      -> D, RowMajor; no C operand (ElementC = void), identity epilogue
// The grouped collective rebuilds each expert's scale layout from its (M, N, K) on the device, which is why the
// activation scales must be K-major: then expert e's compact layout is exactly a slice of the global tensor.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cutlass/cutlass.h"
#include "cutlass/numeric_types.h"
#include "cute/tensor.hpp"
#include "cutlass/detail/blockwise_scale_layout.hpp"
#include "cutlass/epilogue/collective/collective_builder.hpp"
#include "cutlass/epilogue/dispatch_policy.hpp"
#include "cutlass/epilogue/fusion/operations.hpp"
#include "cutlass/gemm/collective/collective_builder.hpp"
#include "cutlass/gemm/device/gemm_universal_adapter.h"
#include "cutlass/gemm/dispatch_policy.hpp"
#include "cutlass/gemm/group_array_problem_shape.hpp"
#include "cutlass/gemm/kernel/gemm_universal.hpp"
#include "cutlass/kernel_hardware_info.h"
#include "cutlass/util/packed_stride.hpp"

#include "core/error.hpp"
#include "core/kernel_registry.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/grouped_gemm/grouped_kernel.hpp"

#if !defined(CUTLASS_ARCH_MMA_SM90_SUPPORTED) || !defined(CUTLASS_ARCH_MMA_MODIFIABLE_TMA_SM90_SUPPORTED)
// Device-modifiable TMA descriptors (every grouped SM90 kernel) need CUDA 12.3 or newer.
#error "The SM90 grouped FP8 kernels need CUDA >= 12.3 and an sm_90a target"
#endif

namespace moecutlass::cuda::sm90 {

using namespace cute;

// The CUTLASS types of registry row `Index` (core/kernel_configs.def) with output `ElementD_`. A swapped
// configuration computes D^T = B * A^T: the expert's weights are CUTLASS's A (M = the model's N, 128x128 scale
// blocks), its few token rows are CUTLASS's B (N = rows, one scale per token), and the column-major D^T it writes
// is exactly the row-major D [rows, N].
template <int Index, class ElementD_>
struct RegistryConfig {
  static constexpr KernelConfig kRow = kKernelConfigs[Index];
  static constexpr bool kCooperative = kRow.schedule == ::moecutlass::KernelSchedule::Cooperative;
  using ElementD = ElementD_;
  using TileShape = Shape<Int<kRow.tile_m>, Int<kRow.tile_n>, Int<kRow.tile_k>>;
  using ClusterShape = Shape<Int<kRow.cluster_m>, Int<kRow.cluster_n>, _1>;
  using KernelSchedule = cute::conditional_t<kCooperative, cutlass::gemm::KernelPtrArrayTmaWarpSpecializedCooperativeFP8Blockwise,
                                             cutlass::gemm::KernelPtrArrayTmaWarpSpecializedPingpongFP8Blockwise>;
  using EpilogueSchedule = cute::conditional_t<kCooperative, cutlass::epilogue::PtrArrayTmaWarpSpecializedCooperative,
                                               cutlass::epilogue::PtrArrayTmaWarpSpecializedPingpong>;
  static constexpr bool Swapped = kRow.swap_ab;
  static constexpr int ScaleGranularityM = Swapped ? 128 : 1;
  static constexpr int ScaleGranularityN = Swapped ? 1 : 128;
  // CUTLASS #3596 (see kernel_configs.def): two M waves with one M scale each and several N scales per tile.
  static_assert(!(Swapped && kRow.tile_m > 128), "swapped configurations must keep tile M at 128 (CUTLASS #3596)");
  static_assert(kRow.tile_k == 128, "the blockwise mainloop promotes once per 128-deep scale block");
};

template <class Config>
struct GroupedGemmTypes {
  using ProblemShape = cutlass::gemm::GroupProblemShape<Shape<int, int, int>>;
  using ElementA = cutlass::float_e4m3_t;
  using ElementB = cutlass::float_e4m3_t;
  using ElementD = typename Config::ElementD;
  using LayoutA = cutlass::layout::RowMajor;
  using LayoutB = cutlass::layout::ColumnMajor;
  using LayoutD = cute::conditional_t<Config::Swapped, cutlass::layout::ColumnMajor, cutlass::layout::RowMajor>;
  using LayoutC = LayoutD;  // no C operand; the layout only completes the builder's signature
  static constexpr int AlignmentA = 128 / cutlass::sizeof_bits<ElementA>::value;
  static constexpr int AlignmentB = 128 / cutlass::sizeof_bits<ElementB>::value;
  static constexpr int AlignmentD = 128 / cutlass::sizeof_bits<ElementD>::value;
  using ElementAccumulator = float;

  using ScaleConfig = cutlass::detail::Sm90BlockwiseScaleConfig<Config::ScaleGranularityM, Config::ScaleGranularityN,
                                                                128, cute::GMMA::Major::K, cute::GMMA::Major::K>;
  using LayoutSFA = decltype(ScaleConfig::deduce_layoutSFA());
  using LayoutSFB = decltype(ScaleConfig::deduce_layoutSFB());

  // D = accumulator, converted: no alpha, no beta, no source.
  using Fusion = cutlass::epilogue::fusion::Sm90EVT<cutlass::epilogue::fusion::Sm90AccFetch>;

  using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, typename Config::TileShape, typename Config::ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, ElementAccumulator, ElementAccumulator, void, LayoutC*,
      AlignmentD, ElementD, LayoutD*, AlignmentD, typename Config::EpilogueSchedule, Fusion>::CollectiveOp;

  using CollectiveMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, ElementA, cute::tuple<LayoutA*, LayoutSFA*>, AlignmentA,
      ElementB, cute::tuple<LayoutB*, LayoutSFB*>, AlignmentB, ElementAccumulator, typename Config::TileShape,
      typename Config::ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
          sizeof(typename CollectiveEpilogue::SharedStorage))>,
      typename Config::KernelSchedule>::CollectiveOp;

  using GemmKernel = cutlass::gemm::kernel::GemmUniversal<ProblemShape, CollectiveMainloop, CollectiveEpilogue>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<GemmKernel>;
  using StrideA = typename GemmKernel::InternalStrideA;
  using StrideB = typename GemmKernel::InternalStrideB;
  using StrideD = typename GemmKernel::InternalStrideD;
};

// Device memory owned by a kernel object; freed on the kernel's device when it goes away.
class DeviceBlock {
 public:
  DeviceBlock() = default;
  DeviceBlock(const DeviceBlock&) = delete;
  DeviceBlock& operator=(const DeviceBlock&) = delete;
  ~DeviceBlock() {
    if (pointer_ != nullptr) cuda_check_noexcept(cudaFree(pointer_), backend_);
  }
  void allocate(size_t bytes, Backend* backend, const char* what) {
    backend_ = backend;
    bytes_ = bytes;
    if (bytes == 0) return;
    cuda_check(cudaMalloc(&pointer_, bytes), what, backend);
  }
  void* get() const { return pointer_; }
  size_t bytes() const { return bytes_; }

 private:
  void* pointer_ = nullptr;
  size_t bytes_ = 0;
  Backend* backend_ = nullptr;
};

template <class T>
void upload(DeviceBlock& block, const std::vector<T>& values, Backend* backend, const char* what) {
  block.allocate(values.size() * sizeof(T), backend, what);
  if (!values.empty()) {
    cuda_check(cudaMemcpy(block.get(), values.data(), values.size() * sizeof(T), cudaMemcpyHostToDevice), what,
               backend);
  }
}

inline void check_cutlass(cutlass::Status status, const char* kernel, const char* step) {
  if (status != cutlass::Status::kSuccess) {
    fail(MC_STATUS_INTERNAL, kernel, ": CUTLASS ", step, " failed: ", cutlassGetStatusString(status));
  }
}

template <class Config>
class CutlassGroupedGemm final : public GroupedGemmKernel {
  using Types = GroupedGemmTypes<Config>;
  using Gemm = typename Types::Gemm;
  using ProblemShape = typename Types::ProblemShape;
  using UnderlyingShape = typename ProblemShape::UnderlyingProblemShape;
  // The precompute kernel writes problem sizes as three int32 per expert.
  static_assert(sizeof(UnderlyingShape) == 3 * sizeof(int32_t), "problem shape must be three packed int32");

 public:
  CutlassGroupedGemm(const GroupedGemmKernelSetup& setup, std::string name) : name_(std::move(name)), setup_(setup) {
    const int experts = setup.arrays.experts;
    Backend* backend = setup.backend;
    // Strides depend on N and K only (the rows are each expert's count), so they are written once, here. In
    // CUTLASS's terms a one-row expert is (M, N) = (1, n), or (n, 1) when swapped.
    const int gemm_m = Config::Swapped ? setup.n : 1;
    const int gemm_n = Config::Swapped ? 1 : setup.n;
    std::vector<typename Types::StrideA> stride_a(
        experts, cutlass::make_cute_packed_stride(typename Types::StrideA{}, {gemm_m, setup.k, 1}));
    std::vector<typename Types::StrideB> stride_b(
        experts, cutlass::make_cute_packed_stride(typename Types::StrideB{}, {gemm_n, setup.k, 1}));
    std::vector<typename Types::StrideD> stride_d(
        experts, cutlass::make_cute_packed_stride(typename Types::StrideD{}, {gemm_m, gemm_n, 1}));
    // The SM90 grouped collective carries these layouts but rebuilds each expert's from its (M, N, K) on the
    // device; they are filled with the layouts of a one-row expert so the arrays hold well-formed values.
    std::vector<typename Types::LayoutSFA> layout_sfa(
        experts, Types::ScaleConfig::tile_atom_to_shape_SFA(make_shape(gemm_m, gemm_n, setup.k, 1)));
    std::vector<typename Types::LayoutSFB> layout_sfb(
        experts, Types::ScaleConfig::tile_atom_to_shape_SFB(make_shape(gemm_m, gemm_n, setup.k, 1)));
    upload(stride_a_, stride_a, backend, "cudaMemcpy(stride_a)");
    upload(stride_b_, stride_b, backend, "cudaMemcpy(stride_b)");
    upload(stride_d_, stride_d, backend, "cudaMemcpy(stride_d)");
    upload(layout_sfa_, layout_sfa, backend, "cudaMemcpy(layout_sfa)");
    upload(layout_sfb_, layout_sfb, backend, "cudaMemcpy(layout_sfb)");

    cutlass::KernelHardwareInfo hw_info;
    hw_info.device_id = setup.device;
    hw_info.sm_count = setup.sm_count;
    hw_info.max_active_clusters =
        cutlass::KernelHardwareInfo::query_device_max_active_clusters<typename Types::GemmKernel>();

    typename Gemm::Arguments arguments{
        cutlass::gemm::GemmUniversalMode::kGrouped,
        // Problem sizes live on the device only: the host never learns how many rows each expert has.
        {experts, reinterpret_cast<UnderlyingShape*>(setup.arrays.problem_sizes), nullptr},
        {reinterpret_cast<const typename Types::ElementA**>(setup.arrays.ptr_a),
         static_cast<typename Types::StrideA*>(stride_a_.get()),
         reinterpret_cast<const typename Types::ElementB**>(setup.arrays.ptr_b),
         static_cast<typename Types::StrideB*>(stride_b_.get()), setup.arrays.ptr_sfa,
         static_cast<typename Types::LayoutSFA*>(layout_sfa_.get()), setup.arrays.ptr_sfb,
         static_cast<typename Types::LayoutSFB*>(layout_sfb_.get())},
        {{}, nullptr, nullptr, reinterpret_cast<typename Types::ElementD**>(setup.arrays.ptr_d),
         static_cast<typename Types::StrideD*>(stride_d_.get())},
        hw_info};

    using RasterOrder = cutlass::gemm::kernel::detail::RasterOrderOptions;
    arguments.scheduler.raster_order = setup.raster_order == 'M'   ? RasterOrder::AlongM
                                       : setup.raster_order == 'N' ? RasterOrder::AlongN
                                                                   : RasterOrder::Heuristic;
    arguments.scheduler.max_swizzle_size = setup.max_swizzle;

    check_cutlass(gemm_.can_implement(arguments), name_.c_str(), "can_implement");
    workspace_.allocate(Gemm::get_workspace_size(arguments), backend, "cudaMalloc(CUTLASS workspace)");
    // Encodes the TMA descriptor templates and sets the kernel's shared-memory limit, once per plan.
    check_cutlass(gemm_.initialize(arguments, workspace_.get()), name_.c_str(), "initialize");
    cuda_check(cudaDeviceSynchronize(), "cudaDeviceSynchronize() after CUTLASS initialize", backend);

    // The launch is prepared here once. CUTLASS's own launcher re-applies a function attribute (a driver call)
    // on every launch, which alone would take a good part of the 10 µs host budget of a run.
    using GemmKernel = typename Types::GemmKernel;
    using Cluster = typename GemmKernel::DispatchPolicy::ClusterShape;
    grid_ = Gemm::get_grid_shape(gemm_.params());
    block_ = GemmKernel::get_block_shape();
    shared_memory_bytes_ = GemmKernel::SharedStorageSize;
    cluster_ = dim3(cute::size<0>(Cluster{}), cute::size<1>(Cluster{}), cute::size<2>(Cluster{}));
    kernel_function_ = reinterpret_cast<const void*>(&cutlass::device_kernel<GemmKernel>);
  }

  const char* name() const override { return name_.c_str(); }

  int64_t workspace_bytes() const override {
    return static_cast<int64_t>(stride_a_.bytes() + stride_b_.bytes() + stride_d_.bytes() + layout_sfa_.bytes() +
                                layout_sfb_.bytes() + workspace_.bytes());
  }

  void launch(cudaStream_t stream, bool programmatic) override {
    cudaLaunchAttribute attributes[2] = {};
    attributes[0].id = cudaLaunchAttributeClusterDimension;
    attributes[0].val.clusterDim.x = cluster_.x;
    attributes[0].val.clusterDim.y = cluster_.y;
    attributes[0].val.clusterDim.z = cluster_.z;
    attributes[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attributes[1].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t config = {};
    config.gridDim = grid_;
    config.blockDim = block_;
    config.dynamicSmemBytes = static_cast<size_t>(shared_memory_bytes_);
    config.stream = stream;
    config.attrs = attributes;
    config.numAttrs = programmatic ? 2 : 1;
    // The kernel copies its parameters at launch, so the same initialized Params serve every run.
    void* arguments[] = {const_cast<typename Gemm::Params*>(&gemm_.params())};
    cuda_check(cudaLaunchKernelExC(&config, kernel_function_, arguments), name_.c_str(), setup_.backend);
  }

 private:
  std::string name_;
  GroupedGemmKernelSetup setup_;
  DeviceBlock stride_a_, stride_b_, stride_d_, layout_sfa_, layout_sfb_, workspace_;
  Gemm gemm_;
  dim3 grid_, block_, cluster_;
  int shared_memory_bytes_ = 0;
  const void* kernel_function_ = nullptr;
};

}  // namespace moecutlass::cuda::sm90

namespace moecutlass::cuda {

template <int Index, int Dtype>
std::unique_ptr<GroupedGemmKernel> make_grouped_kernel(const GroupedGemmKernelSetup& setup) {
  static_assert(Dtype == MC_DTYPE_BF16 || Dtype == MC_DTYPE_FP16, "bf16 or fp16 output");
  using ElementD = cute::conditional_t<Dtype == MC_DTYPE_FP16, cutlass::half_t, cutlass::bfloat16_t>;
  std::string name = std::string(kKernelConfigs[Index].name) + (Dtype == MC_DTYPE_FP16 ? "_fp16" : "_bf16");
  return std::make_unique<sm90::CutlassGroupedGemm<sm90::RegistryConfig<Index, ElementD>>>(setup, std::move(name));
}

}  // namespace moecutlass::cuda
