# shmbus's dependencies as two imported targets, shmbus::deps_libuv and
# shmbus::deps_msgpack. Used by the build (CMakeLists.txt) and installed
# beside shmbusConfig.cmake, so a consumer finds them the same way the build
# did. Everything runs inside a function: no variable reaches the caller's
# scope (pkg-config's cache entries carry a _shmbus_ prefix).
#
# msgpack-c, newest first:
#   msgpack-c 6.x (Debian 13: libmsgpack-c-dev) ships the CMake package
#     `msgpack-c` with target msgpack-c, and msgpack-c.pc (whose relative
#     includedir CMake rejects, hence the package config first);
#   msgpack-c 3.x-4.x (Debian 12: libmsgpack-dev) ships the CMake package
#     `msgpack` with target msgpackc, and msgpack.pc;
#   otherwise pkg-config, msgpack-c then msgpack.
# libuv: pkg-config `libuv` (Debian's libuv1-dev ships no CMake package).
#
# _shmbus_find_deps(<result-var> [QUIET]) sets <result-var> to TRUE when both
# were found, else to FALSE (the caller decides whether that is fatal), and
# <result-var>_MSGPACK_PC to the pkg-config module name of msgpack-c (msgpack-c
# or msgpack; the build writes it into shmbus.pc).

function(_shmbus_find_deps result)
  set(quiet "")
  if(ARGV1 STREQUAL "QUIET")
    set(quiet QUIET)
  endif()
  set(${result} FALSE PARENT_SCOPE)

  # Windows (scripts/windows.sh cross-builds both): their own CMake
  # packages, linked statically (uv_a, msgpackc-static), so that shmbus.dll
  # and the programs need no DLL of theirs beside them.
  if(WIN32 AND NOT TARGET shmbus::deps_libuv)
    find_package(libuv CONFIG QUIET)
    if(TARGET uv_a)
      add_library(shmbus::deps_libuv INTERFACE IMPORTED)
      set_target_properties(shmbus::deps_libuv PROPERTIES INTERFACE_LINK_LIBRARIES uv_a)
    endif()
  endif()
  if(WIN32 AND NOT TARGET shmbus::deps_msgpack)
    find_package(msgpack CONFIG QUIET)
    if(TARGET msgpackc-static)
      add_library(shmbus::deps_msgpack INTERFACE IMPORTED)
      set_target_properties(shmbus::deps_msgpack PROPERTIES
        INTERFACE_LINK_LIBRARIES msgpackc-static INTERFACE_SHMBUS_PC_NAME msgpack)
    endif()
  endif()

  find_package(PkgConfig QUIET)

  if(NOT TARGET shmbus::deps_msgpack)
    set(found "")
    find_package(msgpack-c CONFIG QUIET)
    if(TARGET msgpack-c)
      set(found msgpack-c)
      set(pc msgpack-c)
    else()
      find_package(msgpack CONFIG QUIET)
      if(TARGET msgpackc)
        set(found msgpackc)
        set(pc msgpack)
      endif()
    endif()
    if(NOT found AND PKG_CONFIG_FOUND)
      pkg_check_modules(_shmbus_msgpack QUIET IMPORTED_TARGET msgpack-c>=3.0)
      if(_shmbus_msgpack_FOUND)
        set(found PkgConfig::_shmbus_msgpack)
        set(pc msgpack-c)
      else()
        pkg_check_modules(_shmbus_msgpack QUIET IMPORTED_TARGET msgpack>=3.0)
        if(_shmbus_msgpack_FOUND)
          set(found PkgConfig::_shmbus_msgpack)
          set(pc msgpack)
        endif()
      endif()
    endif()
    if(NOT found)
      if(NOT quiet)
        message(SEND_ERROR "shmbus: msgpack-c >= 3.0 not found (neither its CMake package "
                "msgpack-c or msgpack nor pkg-config's msgpack-c or msgpack); Debian: "
                "apt-get install libmsgpack-c-dev (13) or libmsgpack-dev (12)")
      endif()
      return()
    endif()
    add_library(shmbus::deps_msgpack INTERFACE IMPORTED)
    set_target_properties(shmbus::deps_msgpack PROPERTIES INTERFACE_LINK_LIBRARIES ${found})
    set_target_properties(shmbus::deps_msgpack PROPERTIES INTERFACE_SHMBUS_PC_NAME ${pc})
    if(NOT quiet)
      message(STATUS "shmbus: msgpack-c from ${found}")
    endif()
  endif()

  if(NOT TARGET shmbus::deps_libuv)
    if(PKG_CONFIG_FOUND)
      pkg_check_modules(_shmbus_libuv QUIET IMPORTED_TARGET libuv>=1.40)
    endif()
    if(NOT _shmbus_libuv_FOUND)
      if(NOT quiet)
        message(SEND_ERROR "shmbus: libuv >= 1.40 not found through pkg-config; Debian: "
                "apt-get install pkg-config libuv1-dev")
      endif()
      return()
    endif()
    add_library(shmbus::deps_libuv INTERFACE IMPORTED)
    set_target_properties(shmbus::deps_libuv PROPERTIES
      INTERFACE_LINK_LIBRARIES PkgConfig::_shmbus_libuv)
  endif()
  get_target_property(pc shmbus::deps_msgpack INTERFACE_SHMBUS_PC_NAME)
  set(${result}_MSGPACK_PC ${pc} PARENT_SCOPE)
  set(${result} TRUE PARENT_SCOPE)
endfunction()
