# CUDA toolchain selection and flags (DESIGN.md section 5).
#
# MOECUTLASS_CUDA = AUTO | ON | OFF. AUTO builds the CUDA backend only when a CUDA compiler is found, so the
# same source tree gives a CPU-only library (same ABI) on machines without the toolkit.
# Result: MOECUTLASS_WITH_CUDA (TRUE/FALSE) in the caller's scope.

set(MOECUTLASS_CUDA "AUTO" CACHE STRING "Build the CUDA backend: AUTO (when a CUDA compiler is found), ON or OFF")
set_property(CACHE MOECUTLASS_CUDA PROPERTY STRINGS AUTO ON OFF)
string(TOUPPER "${MOECUTLASS_CUDA}" _mc_cuda_mode)
if(NOT _mc_cuda_mode MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "MOECUTLASS_CUDA='${MOECUTLASS_CUDA}' is not one of AUTO, ON, OFF.")
endif()

option(MOECUTLASS_ENABLE_PDL "Programmatic dependent launch in CUTLASS SM90 kernels (CUTLASS_ENABLE_GDC_FOR_SM90)" ON)

set(MOECUTLASS_WITH_CUDA FALSE)
if(NOT _mc_cuda_mode STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(MOECUTLASS_WITH_CUDA TRUE)
  elseif(_mc_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR
      "MOECUTLASS_CUDA=ON but no CUDA compiler was found. Install the CUDA toolkit (nvcc 12.x/13.x), put nvcc on "
      "PATH or pass -DCMAKE_CUDA_COMPILER=/path/to/nvcc; or configure with -DMOECUTLASS_CUDA=AUTO|OFF for a "
      "CPU-only library.")
  else()
    message(STATUS "MoeCutlass: no CUDA compiler found, building the CPU-only library (MOECUTLASS_CUDA=AUTO)")
  endif()
endif()

if(MOECUTLASS_WITH_CUDA)
  # Must be set before enable_language(CUDA). Two sets of architectures:
  #  - CMAKE_CUDA_ARCHITECTURES, for everything but the grouped-GEMM kernels (conversion, quantization, the layer's
  #    stages): Ampere, Ada and Hopper, plus Blackwell where nvcc knows it (added below), so the library loads and
  #    those kernels run on any GPU from Ampere on; the PTX of the lowest one lets a newer GPU JIT them.
  #  - MOECUTLASS_SM90_ARCHITECTURE, for the CUTLASS SM90 units (native/src/CMakeLists.txt): they use sm_90a-only
  #    instructions (wgmma, TMA multicast), which plain "90" does not enable. CMake turns 90a into
  #    -gencode arch=compute_90a,code=[sm_90a] itself, which avoids nvcc 13's handling of -arch=sm_90a.
  set(_mc_default_architectures FALSE)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
    set(CMAKE_CUDA_ARCHITECTURES "80;89;90a" CACHE STRING "CUDA architectures of the non-CUTLASS kernels" FORCE)
    set(_mc_default_architectures TRUE)
  endif()
  set(MOECUTLASS_SM90_ARCHITECTURE "90a" CACHE STRING "CUDA architecture of the CUTLASS SM90 grouped-GEMM kernels")
  # Static cudart: the shipped .so then depends on the driver (libcuda.so) only, never on a toolkit install.
  set(CMAKE_CUDA_RUNTIME_LIBRARY Static)
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  set(CMAKE_CUDA_EXTENSIONS OFF)
  if(NOT MOECUTLASS_SM90_ARCHITECTURE MATCHES "^90a(-real)?$")
    message(WARNING "MOECUTLASS_SM90_ARCHITECTURE='${MOECUTLASS_SM90_ARCHITECTURE}' is not 90a: the SM90 kernels need "
                    "sm_90a (wgmma, TMA multicast); plain 90 builds will not run them.")
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  # Blackwell (sm_100) from nvcc 12.8, when the architectures are this file's default.
  if(_mc_default_architectures AND CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 12.8)
    set(CMAKE_CUDA_ARCHITECTURES "80;89;90a;100" CACHE STRING "CUDA architectures of the non-CUTLASS kernels" FORCE)
  endif()
  message(STATUS
    "MoeCutlass: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}, "
    "grouped-GEMM kernels ${MOECUTLASS_SM90_ARCHITECTURE})")
endif()

# Applies the CUDA compile settings to a target that holds .cu sources.
function(moecutlass_cuda_target_settings target)
  target_compile_definitions(${target} PUBLIC MOECUTLASS_WITH_CUDA=1)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
  if(MOECUTLASS_ENABLE_PDL)
    target_compile_definitions(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:CUTLASS_ENABLE_GDC_FOR_SM90=1>)
  endif()
  set_target_properties(${target} PROPERTIES
    CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}"
    CUDA_RUNTIME_LIBRARY Static
    CUDA_VISIBILITY_PRESET hidden)
endfunction()
