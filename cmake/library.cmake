# libpciplan.so: the C interface (include/pciplan.h, src/capi) over pciplan_lib, and the tests
# of it and of the Python (python/pciplan) and Go (go/pciplan) bindings over it. Included by
# CMakeLists.txt after pciplan_lib and the CLI are defined.

# The libFuzzer build instruments everything for the fuzz targets only.
if(PCIPLAN_FUZZ)
  return()
endif()

enable_language(C)
include(GNUInstallDirs)

# The static library is linked into the shared one: position-independent, and its symbols
# hidden (the version script below exports only pciplan_*; hidden symbols also spare the CLI
# the cost of interposable calls).
set_target_properties(pciplan_lib pciplan_model PROPERTIES POSITION_INDEPENDENT_CODE ON
  CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)

set(PCIPLAN_EXPORTS ${CMAKE_SOURCE_DIR}/src/capi/pciplan.map)
add_library(pciplan_shared SHARED ${CMAKE_SOURCE_DIR}/src/capi/capi.cc)
add_library(pciplan::pciplan ALIAS pciplan_shared)
set_target_properties(pciplan_shared PROPERTIES
  OUTPUT_NAME pciplan EXPORT_NAME pciplan
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
  CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
  LINK_DEPENDS ${PCIPLAN_EXPORTS}
  PUBLIC_HEADER ${CMAKE_SOURCE_DIR}/include/pciplan.h)
target_include_directories(pciplan_shared PUBLIC
  $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/include> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_definitions(pciplan_shared PRIVATE PCIPLAN_VERSION_STRING="${PROJECT_VERSION}")
target_link_libraries(pciplan_shared PRIVATE pciplan_lib)
target_link_options(pciplan_shared PRIVATE -Wl,--version-script=${PCIPLAN_EXPORTS})
if(NOT PCIPLAN_SANITIZE)
  # Sanitizer runtimes are linked into executables only.
  target_link_options(pciplan_shared PRIVATE -Wl,--no-undefined)
endif()

# A pkg-config file for the build tree: the Go binding's tests build against it.
set(PCIPLAN_UNINSTALLED_PC ${CMAKE_BINARY_DIR}/pkgconfig-uninstalled/pciplan.pc)
file(GENERATE OUTPUT ${PCIPLAN_UNINSTALLED_PC} CONTENT "Name: pciplan
Description: pciplan (build tree of ${CMAKE_SOURCE_DIR})
Version: ${PROJECT_VERSION}
Libs: -L$<TARGET_FILE_DIR:pciplan_shared> -Wl,-rpath,$<TARGET_FILE_DIR:pciplan_shared> -lpciplan
Cflags: -I${CMAKE_SOURCE_DIR}/include
")

# The C tests: C99, every warning an error, against the shared library.
add_executable(pciplan_capi_test tests/capi/capi_test.c)
set_target_properties(pciplan_capi_test PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON
  C_EXTENSIONS OFF)
target_compile_options(pciplan_capi_test PRIVATE -Werror)
target_compile_definitions(pciplan_capi_test PRIVATE _POSIX_C_SOURCE=200809L)
target_link_libraries(pciplan_capi_test PRIVATE pciplan_shared)
add_dependencies(pciplan_capi_test pciplan)
set(PCIPLAN_CAPI_TESTS PlanFillsAddresses CheckSaysTheFamily QemuArgsTextAndJson TreeTextAndDot
  AttachAndDetach InvalidDomainFillsTheError DeviceErrorsPointIntoTheDevice UsageErrorsLeaveOptions
  WishesAndReplan NullArgumentsAreUsageErrors DevicesAndAddedControllers CorpusMatchesCli)
foreach(t ${PCIPLAN_CAPI_TESTS})
  add_test(NAME CApi.${t} COMMAND pciplan_capi_test ${t} $<TARGET_FILE:pciplan>
           ${CMAKE_SOURCE_DIR})
endforeach()
add_test(NAME CApi.ExportsOnlyCSymbols
         COMMAND ${CMAKE_SOURCE_DIR}/tests/capi/exports_test.sh $<TARGET_FILE:pciplan_shared>
                 ${CMAKE_SOURCE_DIR}/include/pciplan.h)

# The bindings load the uninstrumented library from an interpreter or a Go binary; under the
# sanitizers (CI's second run) the C tests above cover the library.
if(PCIPLAN_SANITIZE)
  return()
endif()

# Debian's python3 (python3-pytest is installed for it), ahead of other python3 on the PATH.
find_program(PCIPLAN_PYTHON3 python3 HINTS /usr/bin NO_CACHE REQUIRED)
add_test(NAME Python.Bindings COMMAND ${PCIPLAN_PYTHON3} -m pytest -q -p no:cacheprovider
         ${CMAKE_SOURCE_DIR}/python/tests)
set(PCIPLAN_PYTHON_TEST_ENV PCIPLAN_LIBRARY=$<TARGET_FILE:pciplan_shared>
  PCIPLAN_CLI=$<TARGET_FILE:pciplan> PYTHONPATH=${CMAKE_SOURCE_DIR}/python
  PYTHONDONTWRITEBYTECODE=1)
set_tests_properties(Python.Bindings PROPERTIES ENVIRONMENT "${PCIPLAN_PYTHON_TEST_ENV}")

find_program(PCIPLAN_GO go REQUIRED)
add_test(NAME Go.Bindings COMMAND ${PCIPLAN_GO} test -count=1 ./...
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/go/pciplan)
# No network and nothing outside the build folder: the package needs no other module.
set(PCIPLAN_GO_TEST_ENV PKG_CONFIG_PATH=${CMAKE_BINARY_DIR}/pkgconfig-uninstalled
  PCIPLAN_CLI=$<TARGET_FILE:pciplan> GOCACHE=${CMAKE_BINARY_DIR}/go/cache
  GOPATH=${CMAKE_BINARY_DIR}/go/path GOPROXY=off GOTOOLCHAIN=local GOENV=off GOFLAGS=
  CGO_ENABLED=1)
set_tests_properties(Go.Bindings PROPERTIES ENVIRONMENT "${PCIPLAN_GO_TEST_ENV}")
