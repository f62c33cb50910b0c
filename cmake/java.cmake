# The JVM side: the JNI shim (futex wake/wait + the C layout table), the connector jar with the shim
# packed inside, and the Java tests under ctest. Included by CMakeLists.txt after it defines the
# fti_core target and FTI_PY_EXECUTABLE (the interpreter that has apache-flink installed).
#
# The jar is compiled against the flink-dist jar of that apache-flink package, so the connector
# always matches the Flink that PyFlink runs. No Maven: Maven Central is not reachable here.

# Java 17 is the JDK we build with; the class files target 11 (see FTI_JAVA_RELEASE).
find_package(Java 17 REQUIRED COMPONENTS Development Runtime)
include(UseJava)
# Only the JNI headers are needed (the shim does not link libjvm), so no REQUIRED on AWT/JVM libs.
# FindJNI needs JAVA_HOME to locate a JDK that is only on PATH (Debian's /usr/bin/javac): derive it
# from the javac that find_package(Java) found, so jni.h comes from the same JDK.
if(NOT DEFINED ENV{JAVA_HOME})
  get_filename_component(_fti_javac "${Java_JAVAC_EXECUTABLE}" REALPATH)
  get_filename_component(_fti_jdk "${_fti_javac}" DIRECTORY)
  get_filename_component(_fti_jdk "${_fti_jdk}" DIRECTORY)
  set(ENV{JAVA_HOME} "${_fti_jdk}")
endif()
find_package(JNI)
if(NOT JAVA_INCLUDE_PATH OR NOT EXISTS "${JAVA_INCLUDE_PATH}/jni.h")
  message(FATAL_ERROR "flinktf-ipc: jni.h not found (install a full JDK, e.g. openjdk-17-jdk-headless)")
endif()

# --- the flink-dist jar of the installed apache-flink package ---------------------------------
execute_process(
  COMMAND ${FTI_PY_EXECUTABLE} -c "import pyflink,os;print(os.path.dirname(pyflink.__file__))"
  OUTPUT_VARIABLE FTI_PYFLINK_DIR
  OUTPUT_STRIP_TRAILING_WHITESPACE
  RESULT_VARIABLE _fti_pyflink_rc)
if(NOT _fti_pyflink_rc EQUAL 0 OR NOT FTI_PYFLINK_DIR)
  message(FATAL_ERROR "flinktf-ipc: ${FTI_PY_EXECUTABLE} cannot import pyflink (pip install apache-flink==2.3.0)")
endif()
file(GLOB FTI_FLINK_DIST_JAR "${FTI_PYFLINK_DIR}/lib/flink-dist-*.jar")
list(LENGTH FTI_FLINK_DIST_JAR _fti_n)
if(NOT _fti_n EQUAL 1)
  message(FATAL_ERROR "flinktf-ipc: expected one flink-dist-*.jar in ${FTI_PYFLINK_DIR}/lib, found '${FTI_FLINK_DIST_JAR}'")
endif()
# log4j etc. for running Flink in the Java tests (the TaskManager of PyFlink has them too).
file(GLOB FTI_FLINK_LOG_JARS "${FTI_PYFLINK_DIR}/lib/log4j-*.jar")
message(STATUS "flinktf-ipc: compiling the connector against ${FTI_FLINK_DIST_JAR}")

# --- the JNI shim ---------------------------------------------------------------------------------
add_library(fti_jni SHARED ${CMAKE_CURRENT_SOURCE_DIR}/csrc/fti_jni.c)
target_include_directories(fti_jni PRIVATE ${JAVA_INCLUDE_PATH} ${JAVA_INCLUDE_PATH2})
target_link_libraries(fti_jni PRIVATE fti_core)
target_compile_options(fti_jni PRIVATE ${FTI_WARNINGS})
# Nothing but the JNI entry points leaves the library.
set_target_properties(fti_jni PROPERTIES C_VISIBILITY_PRESET hidden)

# --- the connector jar ----------------------------------------------------------------------------
# --release 11: flink-dist 2.3.0's class files are version 55 (Java 11) and Flink 2.x still
# runs on Java 11, so the connector must not need more. --release also checks that only the Java 11
# API is used (not just the class file version).
set(FTI_JAVA_RELEASE 11)
file(GLOB_RECURSE FTI_JAVA_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/main/java/*.java)
set(CMAKE_JAVA_COMPILE_FLAGS --release ${FTI_JAVA_RELEASE} -Xlint:all,-serial,-options,-processing -Werror)
add_jar(flinktf-ipc-classes
  SOURCES ${FTI_JAVA_SOURCES}
  INCLUDE_JARS ${FTI_FLINK_DIST_JAR})
get_target_property(FTI_CLASSES_JAR flinktf-ipc-classes JAR_FILE)

# The shim travels inside the jar (io/flinktf/ipc/native/linux-<arch>/libfti_jni.so); NativeRing
# extracts it to a temp file on first use. See NativeRing's comment and docs/ARCHITECTURE.md.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(FTI_JNI_ARCH x86_64)
else()
  set(FTI_JNI_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()
set(FTI_JAR ${CMAKE_CURRENT_BINARY_DIR}/flinktf-ipc.jar)
set(_fti_stage ${CMAKE_CURRENT_BINARY_DIR}/jni-stage)
set(_fti_native_dir io/flinktf/ipc/native/linux-${FTI_JNI_ARCH})
add_custom_command(
  OUTPUT ${FTI_JAR}
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${_fti_stage}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${_fti_stage}/${_fti_native_dir}
  COMMAND ${CMAKE_COMMAND} -E copy $<TARGET_FILE:fti_jni> ${_fti_stage}/${_fti_native_dir}/libfti_jni.so
  COMMAND ${CMAKE_COMMAND} -E copy ${FTI_CLASSES_JAR} ${FTI_JAR}
  COMMAND ${Java_JAR_EXECUTABLE} uf ${FTI_JAR} -C ${_fti_stage} io
  DEPENDS flinktf-ipc-classes ${FTI_CLASSES_JAR} fti_jni
  COMMENT "Packing libfti_jni.so into flinktf-ipc.jar"
  VERBATIM)
add_custom_target(flinktf_ipc_jar ALL DEPENDS ${FTI_JAR})
install(FILES ${FTI_JAR} DESTINATION flinktf_ipc/jars)

# --- Java tests (JUnit 5 from Debian's junit5: scripts/install-system-deps.sh) ---------------------
set(FTI_JUNIT_JAR /usr/share/java/junit-platform-console-standalone.jar CACHE FILEPATH
    "JUnit Platform console launcher (Debian package junit5)")
# Not in wheel builds (scikit-build-core): the wheel needs only the jar.
if(SKBUILD)
  # nothing
elseif(EXISTS ${FTI_JUNIT_JAR})
  enable_testing()
  file(GLOB_RECURSE FTI_JAVA_TEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/test/java/*.java)
  set(CMAKE_JAVA_COMPILE_FLAGS --release ${FTI_JAVA_RELEASE} -Xlint:all,-serial,-options,-processing)
  add_jar(flinktf-ipc-tests
    SOURCES ${FTI_JAVA_TEST_SOURCES}
    INCLUDE_JARS flinktf-ipc-classes ${FTI_FLINK_DIST_JAR} ${FTI_JUNIT_JAR})
  add_dependencies(flinktf-ipc-tests flinktf_ipc_jar)
  get_target_property(FTI_TESTS_JAR flinktf-ipc-tests JAR_FILE)
  # The packed jar (not the classes jar) is on the class path: the tests load the shim the way a
  # Flink job does. Everything goes on the JVM class path (not the launcher's --class-path, a child
  # loader): Flink's mini-cluster deserializes operators with the application class loader.
  string(JOIN ":" _fti_test_cp ${FTI_JUNIT_JAR} ${FTI_TESTS_JAR} ${FTI_JAR} ${FTI_FLINK_DIST_JAR} ${FTI_FLINK_LOG_JARS})
  add_test(NAME java_tests
    COMMAND ${Java_JAVA_EXECUTABLE} -Xmx1g -cp ${_fti_test_cp}
            -Dflinktf.test.python=${FTI_PY_EXECUTABLE} -Dflinktf.test.srcdir=${CMAKE_CURRENT_SOURCE_DIR}
            org.junit.platform.console.ConsoleLauncher
            --disable-banner --disable-ansi-colors --fail-if-no-tests --details=tree --scan-class-path ${FTI_TESTS_JAR})
  set_tests_properties(java_tests PROPERTIES TIMEOUT 600)
else()
  message(STATUS "flinktf-ipc: ${FTI_JUNIT_JAR} missing, Java tests not added (run scripts/install-system-deps.sh)")
endif()
