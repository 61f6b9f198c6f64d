#include "core/tuning_settings.hpp"

#include <cstring>
#include <initializer_list>

namespace moecutlass {

TuningSettings read_tuning_settings(EnvironmentReader getenv_function) {
  TuningSettings settings;
  if (const char* raster = getenv_function("MOECUTLASS_RASTER");
      raster != nullptr && (std::strcmp(raster, "M") == 0 || std::strcmp(raster, "N") == 0 ||
                            std::strcmp(raster, "H") == 0)) {
    settings.raster_order = raster[0];
  }
  if (const char* swizzle = getenv_function("MOECUTLASS_SWIZZLE"); swizzle != nullptr) {
    for (int value : {1, 2, 4, 8}) {
      if (swizzle[0] == static_cast<char>('0' + value) && swizzle[1] == '\0') settings.max_swizzle = value;
    }
  }
  if (const char* pdl = getenv_function("MOECUTLASS_PDL"); pdl != nullptr && std::strcmp(pdl, "0") == 0) {
    settings.programmatic = false;
  }
  if (const char* launch = getenv_function("MOECUTLASS_ES_LAUNCH"); launch != nullptr && std::strcmp(launch, "pdl") == 0) {
    settings.forked = false;
  }
  if (const char* call = getenv_function("MOECUTLASS_CUBLAS_CALL"); call != nullptr) {
    if (std::strcmp(call, "grouped") == 0) settings.cublas_call = 'g';
    if (std::strcmp(call, "loop") == 0) settings.cublas_call = 'l';
  }
  return settings;
}

}  // namespace moecutlass
