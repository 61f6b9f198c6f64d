# CUTLASS location (headers only). Only CUDA builds include this module: a CPU-only build must work on a
# checkout whose submodule was never populated.

set(CUTLASS_DIR "${PROJECT_SOURCE_DIR}/native/third_party/cutlass" CACHE PATH
    "CUTLASS source tree (headers only; default: the native/third_party/cutlass submodule)")

if(NOT EXISTS "${CUTLASS_DIR}/include/cutlass/cutlass.h")
  message(FATAL_ERROR
    "MoeCutlass: CUTLASS headers not found: ${CUTLASS_DIR}/include/cutlass/cutlass.h does not exist.\n"
    "Populate the submodule from a local git copy of NVIDIA/cutlass (from the project root):\n"
    "  ../shared/tools/cutlass-submodule.sh /path/to/cutlass.git\n"
    "or, with network access: git submodule update --init native/third_party/cutlass\n"
    "or point the build at another checkout: -DCUTLASS_DIR=/path/to/cutlass\n"
    "or build without CUDA: -DMOECUTLASS_CUDA=OFF")
endif()

# Adds the CUTLASS include directories to a target's CUDA sources (as SYSTEM: its headers are not ours to keep
# -Wall clean).
function(moecutlass_use_cutlass target)
  target_include_directories(${target} SYSTEM PRIVATE
    "${CUTLASS_DIR}/include"
    "${CUTLASS_DIR}/tools/util/include")
endfunction()
