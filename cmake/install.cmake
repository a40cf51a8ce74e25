# cmake --install: the pciplan program, libpciplan.so and pciplan.h, pciplan.pc, the CMake
# package (find_package(pciplan), target pciplan::pciplan), the man page pciplan(1) (built from
# doc/pciplan.1.scd by scdoc), bash completion and the Python module; cpack -G DEB packs the
# same. Also the tests of an install into a DESTDIR and of the .deb (tests/install). Included
# by CMakeLists.txt after cmake/library.cmake.

if(PCIPLAN_FUZZ)
  return()
endif()

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

find_program(PCIPLAN_SCDOC scdoc REQUIRED)
set(PCIPLAN_MAN ${CMAKE_BINARY_DIR}/doc/pciplan.1)
add_custom_command(OUTPUT ${PCIPLAN_MAN}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/doc
  COMMAND ${PCIPLAN_SCDOC} < ${CMAKE_SOURCE_DIR}/doc/pciplan.1.scd > ${PCIPLAN_MAN}
  DEPENDS ${CMAKE_SOURCE_DIR}/doc/pciplan.1.scd
  COMMENT "Writing the man page pciplan(1)")
add_custom_target(pciplan_man ALL DEPENDS ${PCIPLAN_MAN})

install(TARGETS pciplan RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS pciplan_shared EXPORT pciplanTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  PUBLIC_HEADER DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
set(PCIPLAN_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/pciplan)
install(EXPORT pciplanTargets NAMESPACE pciplan:: DESTINATION ${PCIPLAN_CMAKE_DIR})
configure_package_config_file(cmake/pciplanConfig.cmake.in
  ${CMAKE_BINARY_DIR}/cmake-package/pciplanConfig.cmake INSTALL_DESTINATION ${PCIPLAN_CMAKE_DIR})
# The soname changes with the major version: a package of another major is not compatible.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cmake-package/pciplanConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/cmake-package/pciplanConfig.cmake
  ${CMAKE_BINARY_DIR}/cmake-package/pciplanConfigVersion.cmake DESTINATION ${PCIPLAN_CMAKE_DIR})

# pciplan.pc names the prefix installed into (cmake --install --prefix, cpack's /usr), known
# only when installing: written then from a template whose other fields are filled now.
set(PREFIX "@PREFIX@")
configure_file(cmake/pciplan.pc.in ${CMAKE_BINARY_DIR}/pkgconfig-template/pciplan.pc.in @ONLY)
unset(PREFIX)
install(CODE "
  set(PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(pc \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig/pciplan.pc\")
  message(STATUS \"Installing: \${pc}\")
  configure_file(\"${CMAKE_BINARY_DIR}/pkgconfig-template/pciplan.pc.in\" \"\${pc}\" @ONLY)
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${pc}\")
")

install(FILES ${PCIPLAN_MAN} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES doc/bash-completion/pciplan
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)

# The Python module where Debian's python3 looks (/usr/lib/python3/dist-packages), with the
# way from it to the library, so that it loads the library installed beside it.
set(PCIPLAN_PYTHON_DIR lib/python3/dist-packages/pciplan)
file(RELATIVE_PATH PCIPLAN_PYTHON_TO_LIB /prefix/${PCIPLAN_PYTHON_DIR}
  /prefix/${CMAKE_INSTALL_LIBDIR}/libpciplan.so.${PROJECT_VERSION_MAJOR})
file(WRITE ${CMAKE_BINARY_DIR}/python-install/_install.py
  "# Written by cmake --install: the library, relative to this folder.\n"
  "LIBRARY = \"${PCIPLAN_PYTHON_TO_LIB}\"\n")
install(FILES python/pciplan/__init__.py ${CMAKE_BINARY_DIR}/python-install/_install.py
  DESTINATION ${PCIPLAN_PYTHON_DIR})

set(CPACK_PACKAGE_NAME pciplan)
set(CPACK_PACKAGE_VENDOR pciplan)
set(CPACK_PACKAGE_CONTACT "pciplan developers <dev@pciplan.dev>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "plans PCI/PCIe device addresses for QEMU virtual machines")
set(CPACK_PACKAGE_DESCRIPTION "pciplan reads a libvirt domain XML and fills in every missing \
device address as libvirt 9.0 would, or under wishes (spare hot-plug slots, integrated \
endpoints, NUMA nodes), never moving an address; it writes QEMU's command line, shows the \
topology, proves plans in QEMU, and attaches and detaches devices. With libpciplan, its C \
interface, and the Python module over it.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # pugixml, fmt, libstdc++, libc: dpkg-shlibdeps
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3, qemu-system-x86")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "qemu-system-arm, graphviz")
set(CPACK_GENERATOR DEB)
include(CPack)

# What is installed is built with the sanitizers in CI's second run, which programs built
# against it without them cannot load: the install tests run in the plain build.
if(PCIPLAN_SANITIZE)
  return()
endif()

set(PCIPLAN_INSTALL_TEST ${CMAKE_SOURCE_DIR}/tests/install/install_test.sh)
set(PCIPLAN_INSTALL_TEST_ENV PCIPLAN_BUILD=${CMAKE_BINARY_DIR}
  PCIPLAN_SOURCE=${CMAKE_SOURCE_DIR} PCIPLAN_PYTHON3=${PCIPLAN_PYTHON3}
  PCIPLAN_VERSION=${PROJECT_VERSION} PCIPLAN_LIBDIR=${CMAKE_INSTALL_LIBDIR})
add_test(NAME Install.IntoDestdir COMMAND ${PCIPLAN_INSTALL_TEST} destdir)
set_tests_properties(Install.IntoDestdir PROPERTIES FIXTURES_SETUP pciplan_destdir)
foreach(t PkgConfig CSmoke CMakePackage ManPage BashCompletion Python Program)
  add_test(NAME Install.${t} COMMAND ${PCIPLAN_INSTALL_TEST} ${t})
  set_tests_properties(Install.${t} PROPERTIES FIXTURES_REQUIRED pciplan_destdir)
endforeach()
add_test(NAME Package.DebUnpacksAndRuns COMMAND ${PCIPLAN_INSTALL_TEST} deb)
add_test(NAME Docs.ManPageAndCompletionNameEveryOption COMMAND ${PCIPLAN_INSTALL_TEST} docs)
get_property(PCIPLAN_INSTALL_TESTS DIRECTORY PROPERTY TESTS)
list(FILTER PCIPLAN_INSTALL_TESTS INCLUDE REGEX "^(Install|Package|Docs)\\.")
set_tests_properties(${PCIPLAN_INSTALL_TESTS} PROPERTIES ENVIRONMENT "${PCIPLAN_INSTALL_TEST_ENV}")
