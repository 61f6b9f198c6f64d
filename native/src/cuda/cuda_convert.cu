#include "cuda/cuda_convert.hpp"

#include <algorithm>
#include <cstdint>

#include "cuda/cuda_codecs.cuh"

namespace moecutlass {

namespace {

constexpr int kConvertThreads = 256;
constexpr int64_t kMaxConvertBlocks = 4096;  // grid-stride beyond this: several waves on any GPU

// out[i] = encode(decode(in[i])) for i < count. Elements [head, head + vectors * V) move as V-element packs (both
// src + head and dst + head are aligned to their pack size); the rest -- at most V - 1 before and V - 1 after, or
// everything when the two pointers cannot be aligned together (head == count) -- one by one. Not __restrict__:
// an in-place bf16 <-> fp16 conversion (each element read, then written by the same thread) is legal.
template <int32_t In, int32_t Out, int V>
__global__ void __launch_bounds__(kConvertThreads)
    convert_kernel(const typename cuda::DeviceCodec<In>::Bits* src, typename cuda::DeviceCodec<Out>::Bits* dst,
                   int64_t head, int64_t vectors, int64_t count) {
  using InCodec = cuda::DeviceCodec<In>;
  using OutCodec = cuda::DeviceCodec<Out>;
  using InPack = cuda::ElementPack<typename InCodec::Bits, V>;
  using OutPack = cuda::ElementPack<typename OutCodec::Bits, V>;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;

  const auto* in_words = reinterpret_cast<const typename InPack::Word*>(src + head);
  auto* out_words = reinterpret_cast<typename OutPack::Word*>(dst + head);
  for (int64_t v = first; v < vectors; v += stride) {
    InPack in;
    in.word = in_words[v];
    OutPack out;
#pragma unroll
    for (int j = 0; j < V; ++j) out.element[j] = OutCodec::encode(InCodec::decode(in.element[j]));
    out_words[v] = out.word;
  }

  const int64_t tail = head + vectors * V;
  const int64_t edges = head + (count - tail);
  for (int64_t e = first; e < edges; e += stride) {
    const int64_t i = e < head ? e : tail + (e - head);
    dst[i] = OutCodec::encode(InCodec::decode(src[i]));
  }
}

// Elements from `pointer` (element-aligned) to the next multiple of `alignment` bytes.
int64_t elements_to_alignment(const void* pointer, int64_t alignment, int64_t element_size) {
  const auto address = static_cast<int64_t>(reinterpret_cast<uintptr_t>(pointer) % static_cast<uintptr_t>(alignment));
  return ((alignment - address) % alignment) / element_size;
}

template <int32_t In, int32_t Out>
cudaError_t launch_typed(const void* src, void* dst, int64_t count, cudaStream_t stream) {
  if constexpr (In == Out) {
    // Identical dtypes are a copy (launch_convert); no kernel is instantiated for them.
    (void)src;
    (void)dst;
    (void)count;
    (void)stream;
    return cudaErrorInvalidValue;
  } else {
    using InBits = typename cuda::DeviceCodec<In>::Bits;
    using OutBits = typename cuda::DeviceCodec<Out>::Bits;
    constexpr int64_t kInSize = static_cast<int64_t>(sizeof(InBits));
    constexpr int64_t kOutSize = static_cast<int64_t>(sizeof(OutBits));
    // 16-byte accesses on the wider side: 4 elements when fp32 is involved, 8 otherwise.
    constexpr int V = static_cast<int>(16 / (kInSize > kOutSize ? kInSize : kOutSize));
    const int64_t in_head = elements_to_alignment(src, V * kInSize, kInSize);
    const int64_t out_head = elements_to_alignment(dst, V * kOutSize, kOutSize);
    int64_t head = count;
    int64_t vectors = 0;
    if (in_head == out_head && in_head < count) {
      head = in_head;
      vectors = (count - head) / V;
    }
    const int64_t edges = count - vectors * V;
    const int64_t work = std::max(vectors, edges);
    const int64_t blocks = std::min<int64_t>((work + kConvertThreads - 1) / kConvertThreads, kMaxConvertBlocks);
    convert_kernel<In, Out, V><<<static_cast<unsigned>(blocks), kConvertThreads, 0, stream>>>(
        static_cast<const InBits*>(src), static_cast<OutBits*>(dst), head, vectors, count);
    return cudaGetLastError();
  }
}

template <int32_t In>
cudaError_t launch_from(const void* src, void* dst, int32_t dst_dtype, int64_t count, cudaStream_t stream) {
  switch (dst_dtype) {
    case MC_DTYPE_FP32: return launch_typed<In, MC_DTYPE_FP32>(src, dst, count, stream);
    case MC_DTYPE_BF16: return launch_typed<In, MC_DTYPE_BF16>(src, dst, count, stream);
    case MC_DTYPE_FP16: return launch_typed<In, MC_DTYPE_FP16>(src, dst, count, stream);
    case MC_DTYPE_E4M3: return launch_typed<In, MC_DTYPE_E4M3>(src, dst, count, stream);
    default: return cudaErrorInvalidValue;
  }
}

int64_t element_size(int32_t dtype) {
  switch (dtype) {
    case MC_DTYPE_FP32: return 4;
    case MC_DTYPE_BF16:
    case MC_DTYPE_FP16: return 2;
    case MC_DTYPE_E4M3: return 1;
    default: return 0;
  }
}

}  // namespace

cudaError_t launch_convert(const void* src, int32_t src_dtype, void* dst, int32_t dst_dtype, int64_t count,
                           cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  if (element_size(src_dtype) == 0 || element_size(dst_dtype) == 0) return cudaErrorInvalidValue;
  if (src_dtype == dst_dtype) {
    // A bit copy, as on the CPU: identical dtypes must not canonicalize NaN payloads.
    if (src == dst) return cudaSuccess;
    return cudaMemcpyAsync(dst, src, static_cast<size_t>(count * element_size(src_dtype)), cudaMemcpyDeviceToDevice,
                           stream);
  }
  switch (src_dtype) {
    case MC_DTYPE_FP32: return launch_from<MC_DTYPE_FP32>(src, dst, dst_dtype, count, stream);
    case MC_DTYPE_BF16: return launch_from<MC_DTYPE_BF16>(src, dst, dst_dtype, count, stream);
    case MC_DTYPE_FP16: return launch_from<MC_DTYPE_FP16>(src, dst, dst_dtype, count, stream);
    case MC_DTYPE_E4M3: return launch_from<MC_DTYPE_E4M3>(src, dst, dst_dtype, count, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace moecutlass
