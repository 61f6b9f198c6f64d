# Sanitized native build (CPU only): MOECUTLASS_SANITIZE=address,undefined (any list -fsanitize= accepts).
#
# Compiles and links everything below the top level (the library objects and the native unit tests) with
# -fsanitize=<list> -fno-omit-frame-pointer and -fno-sanitize-recover=all, so a UBSan report fails the test that
# caused it. `./build.sh test` builds this variant in its own folder (artifacts/obj/native-sanitize) and runs the
# GoogleTest suite under it; the normal build and the shipped library never carry these flags.
# Never with CUDA: nvcc does not take -fsanitize, and the CUDA runtime does not run under ASan's shadow memory.

set(MOECUTLASS_SANITIZE "" CACHE STRING
  "Sanitizers for a CPU-only test build, e.g. address,undefined (empty: none; never with CUDA)")
if(NOT MOECUTLASS_SANITIZE)
  return()
endif()
if(MOECUTLASS_WITH_CUDA)
  message(FATAL_ERROR "MOECUTLASS_SANITIZE='${MOECUTLASS_SANITIZE}' needs a CPU-only build: configure with "
    "-DMOECUTLASS_CUDA=OFF.")
endif()
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  message(FATAL_ERROR "MOECUTLASS_SANITIZE needs GCC or Clang (found ${CMAKE_CXX_COMPILER_ID}).")
endif()

set(_mc_sanitize_flags "-fsanitize=${MOECUTLASS_SANITIZE}" -fno-omit-frame-pointer -fno-sanitize-recover=all)
# Fail the configure (not the build, minutes later) when the compiler or its runtime libraries lack the sanitizers.
include(CheckCXXSourceCompiles)
set(CMAKE_REQUIRED_FLAGS "-fsanitize=${MOECUTLASS_SANITIZE}")
set(CMAKE_REQUIRED_LINK_OPTIONS "-fsanitize=${MOECUTLASS_SANITIZE}")
check_cxx_source_compiles("int main() { return 0; }" MOECUTLASS_SANITIZE_WORKS)
unset(CMAKE_REQUIRED_FLAGS)
unset(CMAKE_REQUIRED_LINK_OPTIONS)
if(NOT MOECUTLASS_SANITIZE_WORKS)
  message(FATAL_ERROR "MOECUTLASS_SANITIZE='${MOECUTLASS_SANITIZE}': ${CMAKE_CXX_COMPILER} cannot build and link "
    "with -fsanitize=${MOECUTLASS_SANITIZE} (install libasan/libubsan, e.g. the compiler's full package).")
endif()

add_compile_options(${_mc_sanitize_flags})
add_link_options("-fsanitize=${MOECUTLASS_SANITIZE}")
message(STATUS "MoeCutlass: sanitized build (-fsanitize=${MOECUTLASS_SANITIZE}); not for shipping")
