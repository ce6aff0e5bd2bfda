# CMake toolchain for 64-bit Windows with Debian's mingw-w64 cross compiler
# (packages gcc-mingw-w64-x86-64 and binutils-mingw-w64-x86-64, pulled in by
# mingw-w64). scripts/windows.sh passes it to every cross build: libuv,
# msgpack-c and shmbus.
#
#   cmake -S . -B build-windows -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake
#
# SHMBUS_WINDOWS_DEPS (a cache variable, or the environment variable of that
# name) is where the cross-built libraries are installed; find_* look there
# and only there for headers and libraries, never in the host's /usr.
# When Wine is installed, tests run through it (CMAKE_CROSSCOMPILING_EMULATOR),
# so ctest works unchanged; SHMBUS_WINE overrides which program runs them.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(_shmbus_triple x86_64-w64-mingw32)
# The win32 thread model: what Windows itself offers, no winpthreads DLL to
# ship beside the programs. Fall back to the default alternative.
find_program(CMAKE_C_COMPILER NAMES ${_shmbus_triple}-gcc-win32 ${_shmbus_triple}-gcc REQUIRED)
find_program(CMAKE_CXX_COMPILER NAMES ${_shmbus_triple}-g++-win32 ${_shmbus_triple}-g++)
find_program(CMAKE_RC_COMPILER NAMES ${_shmbus_triple}-windres REQUIRED)
find_program(CMAKE_AR NAMES ${_shmbus_triple}-gcc-ar-win32 ${_shmbus_triple}-ar REQUIRED)
find_program(CMAKE_RANLIB NAMES ${_shmbus_triple}-gcc-ranlib-win32 ${_shmbus_triple}-ranlib REQUIRED)

if(NOT SHMBUS_WINDOWS_DEPS AND DEFINED ENV{SHMBUS_WINDOWS_DEPS})
  set(SHMBUS_WINDOWS_DEPS "$ENV{SHMBUS_WINDOWS_DEPS}")
endif()
set(SHMBUS_WINDOWS_DEPS "${SHMBUS_WINDOWS_DEPS}" CACHE PATH "cross-built libuv and msgpack-c")
# Try-compile projects re-read this file: hand them the variable too.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES SHMBUS_WINDOWS_DEPS SHMBUS_WINE)

set(CMAKE_FIND_ROOT_PATH /usr/${_shmbus_triple})
if(SHMBUS_WINDOWS_DEPS)
  list(PREPEND CMAKE_FIND_ROOT_PATH "${SHMBUS_WINDOWS_DEPS}")
  list(PREPEND CMAKE_PREFIX_PATH "${SHMBUS_WINDOWS_DEPS}")
endif()
# Programs come from the host; headers, libraries and packages only from
# the Windows roots above.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Static libgcc: the programs then need no DLL from the compiler.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static-libgcc")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libgcc")

if(NOT SHMBUS_WINE AND DEFINED ENV{SHMBUS_WINE})
  set(SHMBUS_WINE "$ENV{SHMBUS_WINE}")
endif()
if(NOT SHMBUS_WINE)
  # Debian's wine64 loader runs 64-bit programs without the 32-bit half
  # (the `wine` wrapper asks for wine32 first).
  find_program(SHMBUS_WINE NAMES wine64 wine PATHS /usr/lib/wine NO_CMAKE_FIND_ROOT_PATH)
endif()
if(SHMBUS_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${SHMBUS_WINE}")
endif()
