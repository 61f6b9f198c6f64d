# NCCL for the multi-GPU MoE layer (issue 16, docs/design/multi-gpu.md "Build and loading").
#
# MOECUTLASS_NCCL = AUTO | ON | OFF. The library never links NCCL: it loads libnccl.so.2 at run time
# (native/src/nccl/nccl_loader.cpp). The build needs nccl.h only to check the loader's declared constants
# (static_assert), and this option decides whether the communicator and parallel-layer API is compiled in:
#  - ON requires the CUDA backend and nccl.h (configure error otherwise);
#  - AUTO is ON where both are found;
#  - OFF builds without it (those calls return MC_STATUS_UNSUPPORTED, "built without NCCL").
# nccl.h is looked for under NCCL_HOME (CMake variable or environment), the CUDA toolkit's include directories, and
# the nvidia-nccl Python package of /opt/torch/.venv (the GPU machine's), in that order.
# Result: MOECUTLASS_WITH_NCCL (TRUE/FALSE), MOECUTLASS_NCCL_INCLUDE_DIR and MOECUTLASS_NCCL_LIBRARY_DIR.

set(MOECUTLASS_NCCL "AUTO" CACHE STRING "Build the NCCL multi-GPU layer: AUTO (CUDA and nccl.h found), ON or OFF")
set_property(CACHE MOECUTLASS_NCCL PROPERTY STRINGS AUTO ON OFF)
string(TOUPPER "${MOECUTLASS_NCCL}" _mc_nccl_mode)
if(NOT _mc_nccl_mode MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "MOECUTLASS_NCCL='${MOECUTLASS_NCCL}' is not one of AUTO, ON, OFF.")
endif()

set(MOECUTLASS_WITH_NCCL FALSE)
set(MOECUTLASS_NCCL_INCLUDE_DIR "")
set(MOECUTLASS_NCCL_LIBRARY_DIR "")
if(NOT _mc_nccl_mode STREQUAL "OFF")
  set(_mc_nccl_hints "")
  set(_mc_nccl_tried "")
  if(DEFINED NCCL_HOME AND NOT NCCL_HOME STREQUAL "")
    list(APPEND _mc_nccl_hints "${NCCL_HOME}/include")
  endif()
  if(DEFINED ENV{NCCL_HOME} AND NOT "$ENV{NCCL_HOME}" STREQUAL "")
    list(APPEND _mc_nccl_hints "$ENV{NCCL_HOME}/include")
  endif()
  if(MOECUTLASS_WITH_CUDA AND CUDAToolkit_INCLUDE_DIRS)
    list(APPEND _mc_nccl_hints ${CUDAToolkit_INCLUDE_DIRS})
  endif()
  set(_mc_torch_python "/opt/torch/.venv/bin/python3")
  if(EXISTS "${_mc_torch_python}")
    execute_process(
      COMMAND "${_mc_torch_python}" -c
        "import nvidia.nccl, os; f = getattr(nvidia.nccl, '__file__', None); print(os.path.dirname(f) if f else list(nvidia.nccl.__path__)[0])"
      OUTPUT_VARIABLE _mc_nccl_python_dir OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _mc_nccl_rc)
    if(_mc_nccl_rc EQUAL 0 AND NOT _mc_nccl_python_dir STREQUAL "")
      list(APPEND _mc_nccl_hints "${_mc_nccl_python_dir}/include")
    endif()
  endif()
  foreach(_mc_dir IN LISTS _mc_nccl_hints)
    list(APPEND _mc_nccl_tried "${_mc_dir}")
    if(EXISTS "${_mc_dir}/nccl.h")
      set(MOECUTLASS_NCCL_INCLUDE_DIR "${_mc_dir}")
      break()
    endif()
  endforeach()
  if(NOT MOECUTLASS_WITH_CUDA)
    if(_mc_nccl_mode STREQUAL "ON")
      message(FATAL_ERROR "MOECUTLASS_NCCL=ON needs the CUDA backend (MOECUTLASS_CUDA=ON or AUTO with nvcc found): "
                          "NCCL collectives run on CUDA devices. Configure with -DMOECUTLASS_NCCL=AUTO|OFF.")
    endif()
    message(STATUS "MoeCutlass: NCCL off (no CUDA backend, MOECUTLASS_NCCL=AUTO)")
  elseif(MOECUTLASS_NCCL_INCLUDE_DIR STREQUAL "")
    string(REPLACE ";" ", " _mc_nccl_tried_text "${_mc_nccl_tried}")
    if(_mc_nccl_mode STREQUAL "ON")
      message(FATAL_ERROR "MOECUTLASS_NCCL=ON but nccl.h was not found (tried: ${_mc_nccl_tried_text}). Set NCCL_HOME "
                          "to an NCCL install (include/nccl.h), install the nvidia-nccl-cu* Python package in "
                          "/opt/torch/.venv, or configure with -DMOECUTLASS_NCCL=AUTO|OFF.")
    endif()
    message(STATUS "MoeCutlass: NCCL off (nccl.h not found; tried: ${_mc_nccl_tried_text})")
  else()
    set(MOECUTLASS_WITH_NCCL TRUE)
    get_filename_component(_mc_nccl_root "${MOECUTLASS_NCCL_INCLUDE_DIR}" DIRECTORY)
    if(EXISTS "${_mc_nccl_root}/lib")
      set(MOECUTLASS_NCCL_LIBRARY_DIR "${_mc_nccl_root}/lib")
    endif()
    message(STATUS "MoeCutlass: NCCL on (nccl.h in ${MOECUTLASS_NCCL_INCLUDE_DIR}; libnccl.so.2 loaded at run time)")
  endif()
endif()
