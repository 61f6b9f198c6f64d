// A sweep of the device e4m3 encoder (cuda/cuda_codecs.cuh, e4m3_code_quad) over every fp32 input, on the
// current CUDA device: built into the native tests of a CUDA build only (e4m3_device_sweep.cu).
#pragma once

#include <cstdint>

namespace moecutlass {
namespace testing {

struct E4m3SweepResult {
  uint64_t inputs = 0;          // pairs encoded (2^32)
  uint64_t mismatches = 0;      // pairs with at least one byte unlike the host rule
  uint64_t first_index = 0;     // the first mismatching pair's index (when mismatches > 0)
  uint32_t first_low = 0;       // its inputs' bits
  uint32_t first_high = 0;
  uint32_t first_codes = 0;     // the device word (low, high, high, low) in bytes 0 .. 3
  uint32_t expected_codes = 0;  // what the host rule gives
  const char* error = nullptr;  // a CUDA error's name, when the sweep could not run
};

// Every 32-bit pattern i as `low`, paired with the pattern i * 2654435761 (an odd multiplier permutes the 2^32
// patterns, so `high` sees every input too, next to varied neighbours).
E4m3SweepResult sweep_e4m3_pair_encoder();

}  // namespace testing
}  // namespace moecutlass
