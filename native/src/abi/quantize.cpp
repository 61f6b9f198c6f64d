// Element-wise conversion and FP8 quantization entry points.
#include "abi/common.hpp"
#include "abi/guard.hpp"
#include "core/dtype.hpp"
#include "core/shapes.hpp"
#include "core/validate.hpp"

using namespace moecutlass;

namespace {

void require_dtype(int32_t dtype, const char* argument) {
  if (!is_known_dtype(dtype)) {
    fail(MC_STATUS_INVALID_DTYPE, argument, " = ", dtype,
         " is not an MC_DTYPE_* value (MC_DTYPE_FP32 1, MC_DTYPE_BF16 2, MC_DTYPE_FP16 3, MC_DTYPE_E4M3 4)");
  }
}

// Quantizer inputs are the high-precision dtypes.
void require_quantizer_input_dtype(int32_t dtype, const char* argument) {
  if (dtype != MC_DTYPE_FP32 && dtype != MC_DTYPE_BF16 && dtype != MC_DTYPE_FP16) {
    fail(MC_STATUS_INVALID_DTYPE, argument, " = ", dtype, " (", dtype_name(dtype),
         ") is not MC_DTYPE_FP32 (1), MC_DTYPE_BF16 (2) or MC_DTYPE_FP16 (3)");
  }
}

}  // namespace

extern "C" {

MC_API mc_status mc_convert_async(mc_context context, const void* src, int32_t src_dtype, void* dst,
                                  int32_t dst_dtype, int64_t count, mc_stream stream) {
  return guard("mc_convert_async", [&] {
    std::shared_ptr<Context> object = resolve<Context>(context, "context");
    require_not_null(src, "src");
    require_not_null(dst, "dst");
    require_dtype(src_dtype, "src_dtype");
    require_dtype(dst_dtype, "dst_dtype");
    require_range(count, 0, INT64_MAX / 4, "count", "0 .. (2^63-1) / 4");
    // Element alignment (not MC_POINTER_ALIGNMENT): conversions run on arbitrary slices of tensors.
    const int64_t src_size = dtype_size(src_dtype);
    const int64_t dst_size = dtype_size(dst_dtype);
    require_aligned(src, static_cast<std::size_t>(src_size), "src", "the size of src_dtype");
    require_aligned(dst, static_cast<std::size_t>(dst_size), "dst", "the size of dst_dtype");
    std::shared_ptr<Stream> keep;
    BackendStream& queue = resolve_stream(stream, *object, keep, "stream");
    object->require_usable();
    require_context_memory(*object, src, count * src_size, "src");
    require_context_memory(*object, dst, count * dst_size, "dst");
    if (count == 0) return;
    object->backend().convert(src, src_dtype, dst, dst_dtype, count, queue);
  });
}

MC_API mc_status mc_quantize_activations_async(mc_context context, const void* input, int32_t input_dtype,
                                               int32_t rows, int32_t cols, void* output, float* scales,
                                               mc_stream stream) {
  return guard("mc_quantize_activations_async", [&] {
    std::shared_ptr<Context> object = resolve<Context>(context, "context");
    require_tensor_pointer(input, "input");
    require_tensor_pointer(output, "output");
    require_tensor_pointer(scales, "scales");
    require_quantizer_input_dtype(input_dtype, "input_dtype");
    require_range(rows, 0, MC_MAX_ROWS, "rows", "0 .. 2147483647 (MC_MAX_ROWS)");
    // cols is the K of the GEMM that consumes the result, so it follows K's rules.
    require_k(cols, "cols");
    std::shared_ptr<Stream> keep;
    BackendStream& queue = resolve_stream(stream, *object, keep, "stream");
    object->require_usable();
    require_context_memory(*object, input, int64_t{rows} * cols * dtype_size(input_dtype), "input");
    require_context_memory(*object, output, activation_bytes(rows, cols), "output");
    require_context_memory(*object, scales, activation_scale_bytes(rows, cols), "scales");
    if (rows == 0) return;
    ActivationQuantization job;
    job.input = input;
    job.input_dtype = input_dtype;
    job.rows = rows;
    job.cols = cols;
    job.output = static_cast<uint8_t*>(output);
    job.scales = scales;
    object->backend().quantize_activations(job, queue);
  });
}

MC_API mc_status mc_quantize_weights_async(mc_context context, const void* input, int32_t input_dtype,
                                           int32_t experts, int32_t n, int32_t k, void* output, float* scales,
                                           mc_stream stream) {
  return guard("mc_quantize_weights_async", [&] {
    std::shared_ptr<Context> object = resolve<Context>(context, "context");
    require_tensor_pointer(input, "input");
    require_tensor_pointer(output, "output");
    require_tensor_pointer(scales, "scales");
    require_quantizer_input_dtype(input_dtype, "input_dtype");
    require_experts(experts, "experts");
    require_n(n, "n");
    require_k(k, "k");
    std::shared_ptr<Stream> keep;
    BackendStream& queue = resolve_stream(stream, *object, keep, "stream");
    object->require_usable();
    require_context_memory(*object, input, weight_bytes(experts, n, k) * dtype_size(input_dtype), "input");
    require_context_memory(*object, output, weight_bytes(experts, n, k), "output");
    require_context_memory(*object, scales, weight_scale_bytes(experts, n, k), "scales");
    WeightQuantization job;
    job.input = input;
    job.input_dtype = input_dtype;
    job.experts = experts;
    job.n = n;
    job.k = k;
    job.output = static_cast<uint8_t*>(output);
    job.scales = scales;
    object->backend().quantize_weights(job, queue);
  });
}

}  // extern "C"
