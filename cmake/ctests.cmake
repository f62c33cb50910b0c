# C tests, each built plain and with sanitizers from the ring's own sources, and the C benchmark.
find_package(Threads REQUIRED)
set(FTI_ASAN -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
# TSan does not model fences (it warns); the fences only order the futex doorbell, while the
# data is ordered by the acquire/release pairs on the positions, which TSan checks.
set(FTI_TSAN -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan)

# fti_c_test(NAME SOURCE VARIANTS...) where a variant is plain, asan or tsan.
function(fti_c_test name source)
  foreach(variant ${ARGN})
    set(target ${name})
    if(NOT variant STREQUAL "plain")
      set(target ${name}_${variant})
    endif()
    add_executable(${target} ${source} ${FTI_CORE_SOURCES})
    target_include_directories(${target} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/csrc)
    target_compile_options(${target} PRIVATE ${FTI_WARNINGS} -g)
    target_link_libraries(${target} PRIVATE Threads::Threads)
    if(variant STREQUAL "asan")
      target_compile_options(${target} PRIVATE ${FTI_ASAN})
      target_link_options(${target} PRIVATE ${FTI_ASAN})
    elseif(variant STREQUAL "tsan")
      target_compile_options(${target} PRIVATE ${FTI_TSAN})
      target_link_options(${target} PRIVATE ${FTI_TSAN})
    endif()
    add_test(NAME ${target} COMMAND ${target})
    set_tests_properties(${target} PROPERTIES TIMEOUT 600)
  endforeach()
endfunction()

fti_c_test(test_ring tests/c/test_ring.c plain asan)
fti_c_test(test_corrupt tests/c/test_corrupt.c plain asan)
fti_c_test(test_hardening tests/c/test_hardening.c plain asan)
fti_c_test(test_threads tests/c/test_threads.c plain tsan)
fti_c_test(test_stress tests/c/test_stress.c plain asan tsan)

add_executable(bench_ring bench/c/bench_ring.c)
target_link_libraries(bench_ring PRIVATE fti_core)
target_compile_options(bench_ring PRIVATE ${FTI_WARNINGS} -O2)

add_executable(bench_wakeups bench/c/bench_wakeups.c)
target_link_libraries(bench_wakeups PRIVATE fti_core Threads::Threads)
target_compile_options(bench_wakeups PRIVATE ${FTI_WARNINGS} -O2)

add_executable(bench_percall bench/c/bench_percall.c)
target_link_libraries(bench_percall PRIVATE fti_core)
target_compile_options(bench_percall PRIVATE ${FTI_WARNINGS} -O2)
