# Version and commit identity of the build.
#
# /VERSION is the single version source shared with the managed side, so it is read here instead of
# being repeated in project(). The commit is taken once at configure time; a -DMOECUTLASS_GIT_COMMIT=...
# on the command line wins (release pipelines build from source archives that have no .git).

# Reads MAJOR.MINOR.PATCH from `version_file` into `out_var`.
function(moecutlass_read_version version_file out_var)
  if(NOT EXISTS "${version_file}")
    message(FATAL_ERROR "MoeCutlass: ${version_file} is missing; it holds the version (e.g. 0.1.0).")
  endif()
  file(STRINGS "${version_file}" lines LIMIT_COUNT 1)
  string(STRIP "${lines}" version)
  if(NOT version MATCHES "^[0-9]+\\.[0-9]+\\.[0-9]+$")
    message(FATAL_ERROR "MoeCutlass: ${version_file} must hold MAJOR.MINOR.PATCH, found '${version}'.")
  endif()
  # Re-run configure when the file changes, so the generated header never goes stale.
  set_property(DIRECTORY "${CMAKE_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${version_file}")
  set(${out_var} "${version}" PARENT_SCOPE)
endfunction()

# Sets MOECUTLASS_GIT_COMMIT (12 hex digits, or empty when unknown).
function(moecutlass_detect_git_commit)
  if(DEFINED MOECUTLASS_GIT_COMMIT)
    return()
  endif()
  set(commit "")
  find_package(Git QUIET)
  if(GIT_FOUND)
    execute_process(
      COMMAND "${GIT_EXECUTABLE}" rev-parse --short=12 HEAD
      WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
      OUTPUT_VARIABLE commit
      RESULT_VARIABLE rc
      ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT rc EQUAL 0)
      set(commit "")
    endif()
    # Reconfigure when HEAD moves (new commit or checkout) so the embedded commit follows it.
    execute_process(
      COMMAND "${GIT_EXECUTABLE}" rev-parse --git-path HEAD
      WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
      OUTPUT_VARIABLE head_file
      RESULT_VARIABLE rc
      ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(rc EQUAL 0 AND head_file)
      if(NOT IS_ABSOLUTE "${head_file}")
        set(head_file "${PROJECT_SOURCE_DIR}/${head_file}")
      endif()
      if(EXISTS "${head_file}")
        set_property(DIRECTORY "${CMAKE_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${head_file}")
        file(STRINGS "${head_file}" head_line LIMIT_COUNT 1)
        if(head_line MATCHES "^ref: (.+)$")
          execute_process(
            COMMAND "${GIT_EXECUTABLE}" rev-parse --git-path "${CMAKE_MATCH_1}"
            WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
            OUTPUT_VARIABLE ref_file
            ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
          if(ref_file AND NOT IS_ABSOLUTE "${ref_file}")
            set(ref_file "${PROJECT_SOURCE_DIR}/${ref_file}")
          endif()
          if(ref_file AND EXISTS "${ref_file}")
            set_property(DIRECTORY "${CMAKE_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${ref_file}")
          endif()
        endif()
      endif()
    endif()
  endif()
  set(MOECUTLASS_GIT_COMMIT "${commit}" PARENT_SCOPE)
endfunction()
