# Splits the native library's debug information into <lib>.dbg, which is never packed (DESIGN.md, packaging).
#
# Two ways in, one implementation:
#   - `cmake --install` runs it on the installed library (see MoeCutlassPackaging.cmake);
#   - `./build.sh pack --native FILE` runs it as a script on a library built elsewhere:
#       cmake -DMOECUTLASS_SPLIT_LIB=<file> [-DMOECUTLASS_OBJCOPY=...] [-DMOECUTLASS_READELF=...] -P MoeCutlassSplitDebug.cmake
#
# Result: <lib> keeps the dynamic symbols and the build id, loses .debug_* and .symtab, and gets a .gnu_debuglink to
# <lib>.dbg (the debug sections, zlib-compressed, and the full symbol table); gdb and symbol servers find it by that
# link or by build id. A library that already has a .gnu_debuglink was split before and is left as it is, so running
# this twice never replaces a good .dbg with an empty one.

function(moecutlass_split_debug lib objcopy readelf)
  if(NOT EXISTS "${lib}")
    message(FATAL_ERROR "MoeCutlass: cannot split debug info, ${lib} does not exist")
  endif()
  if(NOT objcopy OR NOT readelf)
    message(WARNING "MoeCutlass: objcopy/readelf not found; ${lib} keeps its debug info")
    return()
  endif()
  execute_process(COMMAND "${readelf}" -S --wide "${lib}" OUTPUT_VARIABLE sections RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "MoeCutlass: ${readelf} cannot read ${lib} (not an ELF file?): ${err}")
  endif()
  if(sections MATCHES "\\.gnu_debuglink")
    message(STATUS "MoeCutlass: ${lib} already has its debug info split off")
    return()
  endif()
  get_filename_component(dir "${lib}" DIRECTORY)
  get_filename_component(name "${lib}" NAME)
  # Relative names inside the library's folder: --add-gnu-debuglink records the file name only.
  execute_process(COMMAND "${objcopy}" --only-keep-debug --compress-debug-sections=zlib "${name}" "${name}.dbg"
                  WORKING_DIRECTORY "${dir}" RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "MoeCutlass: objcopy --only-keep-debug failed on ${lib}: ${err}")
  endif()
  execute_process(COMMAND "${objcopy}" --strip-debug --strip-unneeded "--add-gnu-debuglink=${name}.dbg" "${name}"
                  WORKING_DIRECTORY "${dir}" RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "MoeCutlass: objcopy --strip-debug failed on ${lib}: ${err}")
  endif()
  file(SIZE "${lib}" lib_size)
  file(SIZE "${lib}.dbg" dbg_size)
  message(STATUS "MoeCutlass: split debug info: ${name} (${lib_size} bytes) + ${name}.dbg (${dbg_size} bytes)")
endfunction()

# Script mode (cmake -P): the arguments come as -D definitions.
if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE AND DEFINED MOECUTLASS_SPLIT_LIB)
  if(NOT MOECUTLASS_OBJCOPY)
    find_program(MOECUTLASS_OBJCOPY objcopy)
  endif()
  if(NOT MOECUTLASS_READELF)
    find_program(MOECUTLASS_READELF readelf)
  endif()
  moecutlass_split_debug("${MOECUTLASS_SPLIT_LIB}" "${MOECUTLASS_OBJCOPY}" "${MOECUTLASS_READELF}")
endif()
