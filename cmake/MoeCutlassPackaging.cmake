# Packaging of the native library: debug information built in, then split off at install time.
#
# Included by the top-level CMakeLists.txt after native/src (the `moecutlass` target must exist).
# MOECUTLASS_SPLIT_DEBUG_INFO (ELF platforms, default ON):
#   - compiles the library's C++ with -g in every configuration (-g never changes the generated code with GCC/Clang),
#     source paths relative to the checkout;
#   - `cmake --install` then leaves lib/libmoecutlass.so stripped, with a .gnu_debuglink to lib/libmoecutlass.so.dbg
#     (cmake/MoeCutlassSplitDebug.cmake). ./build.sh copies both to artifacts/native/<rid>/; only the .so is packed.
# CUDA translation units keep nvcc's defaults (no -g: their host code is CUTLASS templates, and device debug info
# belongs to Debug builds only).

if(WIN32 OR APPLE)
  # Windows has PDBs (never packed either); Mach-O would need dsymutil. Nothing to do here for now.
  return()
endif()

option(MOECUTLASS_SPLIT_DEBUG_INFO "Build libmoecutlass with -g and split the debug info into libmoecutlass.so.dbg on install" ON)
if(NOT MOECUTLASS_SPLIT_DEBUG_INFO)
  return()
endif()
if(NOT CMAKE_OBJCOPY OR NOT CMAKE_READELF)
  message(WARNING "MoeCutlass: objcopy/readelf not found; the installed library keeps its debug info")
  return()
endif()

# -ffile-prefix-map: the debug info (and so the build id, which the linker hashes over it) names sources relative to
# the checkout, so one commit builds the same library bytes in any folder, like the assembly's /_/ paths.
target_compile_options(moecutlass_core PRIVATE
  $<$<COMPILE_LANG_AND_ID:CXX,GNU,Clang>:-g -ffile-prefix-map=${PROJECT_SOURCE_DIR}/=>)

# Runs after native/src's install(TARGETS moecutlass) (policy CMP0082: install rules run in declaration order).
install(CODE "
include(\"${CMAKE_CURRENT_LIST_DIR}/MoeCutlassSplitDebug.cmake\")
moecutlass_split_debug(\"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/$<TARGET_FILE_NAME:moecutlass>\"
                       \"${CMAKE_OBJCOPY}\" \"${CMAKE_READELF}\")
")
