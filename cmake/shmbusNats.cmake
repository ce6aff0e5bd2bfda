# libnats (the NATS C client, Debian libnats-dev) for shmbus-bridge, its
# tests and shmbus-bench's NATS peer. Optional: without it those are left
# out, with a message saying so.
#
# _shmbus_find_nats(<result-var>) sets <result-var> to TRUE and defines the
# interface target shmbus_nats (libnats, its headers, and the compile
# definition SHMBUS_HAVE_NATS=1) when all of these are found:
#   - libnats 3.4 or newer (JetStream's asynchronous publish, message
#     headers): pkg-config `libnats` first (Debian 12 and 13 ship
#     libnats.pc); otherwise the header and the library by name, with the
#     version read from <nats/version.h>. libnats's own CMake package
#     (cnats) is not used: Debian's names a libnats_static.a that the
#     package does not ship, so find_package(cnats) fails there.
#   - the libuv adapter header <nats/adapters/libuv.h> (shipped in
#     libnats-dev), which runs libnats on the caller's libuv loop.
# Else <result-var> is FALSE and <result-var>_WHY says what was missing.
#
# It also sets the cache entry SHMBUS_NATS_SERVER to the path of the
# nats-server program (Debian nats-server) when found: the tests and the
# benchmark start their own servers with it.

set(SHMBUS_NATS_MIN_VERSION 3.4)

function(_shmbus_find_nats result)
  set(${result} FALSE PARENT_SCOPE)
  set(${result}_WHY "" PARENT_SCOPE)
  if(TARGET shmbus_nats)
    set(${result} TRUE PARENT_SCOPE)
    return()
  endif()

  set(version "")
  set(libs "")
  set(incdirs "")
  find_package(PkgConfig QUIET)
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(_shmbus_nats QUIET libnats)
    if(_shmbus_nats_FOUND)
      set(version ${_shmbus_nats_VERSION})
      set(libs ${_shmbus_nats_LINK_LIBRARIES})
      set(incdirs ${_shmbus_nats_INCLUDE_DIRS})
    endif()
  endif()
  if(NOT libs)
    find_path(_shmbus_nats_include nats/nats.h)
    find_library(_shmbus_nats_library nats)
    if(_shmbus_nats_include AND _shmbus_nats_library)
      set(libs ${_shmbus_nats_library})
      set(incdirs ${_shmbus_nats_include})
      if(EXISTS ${_shmbus_nats_include}/nats/version.h)
        file(STRINGS ${_shmbus_nats_include}/nats/version.h vlines
             REGEX "^#define NATS_VERSION_STRING ")
        string(REGEX REPLACE ".*\"([0-9.]+)\".*" "\\1" version "${vlines}")
      endif()
    endif()
  endif()
  if(NOT libs)
    set(${result}_WHY "libnats (Debian libnats-dev) not found" PARENT_SCOPE)
    return()
  endif()
  if(NOT version OR version VERSION_LESS SHMBUS_NATS_MIN_VERSION)
    set(${result}_WHY "libnats ${version} found, ${SHMBUS_NATS_MIN_VERSION} or newer needed"
        PARENT_SCOPE)
    return()
  endif()

  # The libuv adapter: beside nats.h (the pkg-config include directory may
  # be empty when it is the system's).
  find_file(_shmbus_nats_uv_adapter nats/adapters/libuv.h HINTS ${incdirs})
  if(NOT _shmbus_nats_uv_adapter)
    set(${result}_WHY "libnats ${version} found, but not its libuv adapter <nats/adapters/libuv.h>"
        PARENT_SCOPE)
    return()
  endif()

  add_library(shmbus_nats INTERFACE)
  target_link_libraries(shmbus_nats INTERFACE ${libs})
  if(incdirs)
    target_include_directories(shmbus_nats SYSTEM INTERFACE ${incdirs})
  endif()
  target_compile_definitions(shmbus_nats INTERFACE SHMBUS_HAVE_NATS=1)
  set_target_properties(shmbus_nats PROPERTIES INTERFACE_SHMBUS_NATS_VERSION ${version})
  set(${result} TRUE PARENT_SCOPE)
  set(${result}_VERSION ${version} PARENT_SCOPE)
endfunction()

find_program(SHMBUS_NATS_SERVER nats-server
             DOC "nats-server, for the NATS tests and shmbus-bench's NATS peer")
