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
  # Must be set before enable_language(CUDA): the kernels use sm_90a-only instructions (wgmma, TMA multicast),
  # which plain "90" does not enable. CMake turns 90a into -gencode arch=compute_90a,code=[sm_90a] itself, which
  # avoids nvcc 13's handling of the -arch=sm_90a shorthand.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
    set(CMAKE_CUDA_ARCHITECTURES "90a" CACHE STRING "CUDA architectures (MoeCutlass needs 90a)" FORCE)
  endif()
  # Static cudart: the shipped .so then depends on the driver (libcuda.so) only, never on a toolkit install.
  set(CMAKE_CUDA_RUNTIME_LIBRARY Static)
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  set(CMAKE_CUDA_EXTENSIONS OFF)
  if(NOT CMAKE_CUDA_ARCHITECTURES MATCHES "(^|;)90a(-real|-virtual)?(;|$)")
    message(WARNING "CMAKE_CUDA_ARCHITECTURES='${CMAKE_CUDA_ARCHITECTURES}' has no 90a: the SM90 kernels need sm_90a "
                    "(wgmma, TMA multicast); plain 90 builds will not run them.")
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  message(STATUS
    "MoeCutlass: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
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
