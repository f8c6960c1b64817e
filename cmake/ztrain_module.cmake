# Helpers that keep every module built the same way.
#   zt_module(NAME core DEPS ...)  -> static library zt_core from src/core/**.cc
#   zt_test_dir(DIR core DEPS ...) -> one gtest binary from tests/core/*_test.cc (+ helpers)

# A module's cuda/ subfolder (*.cc and *.cu) is built into the same library when ZT_WITH_CUDA,
# which also defines ZT_WITH_CUDA=1 for the module and everything that links it.
function(zt_module)
  cmake_parse_arguments(M "" "NAME" "DEPS" ${ARGN})
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS
       ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  list(FILTER srcs EXCLUDE REGEX ".*/cuda/.*")
  if(ZT_WITH_CUDA)
    file(GLOB_RECURSE cuda_srcs CONFIGURE_DEPENDS
         ${CMAKE_CURRENT_SOURCE_DIR}/cuda/*.cc ${CMAKE_CURRENT_SOURCE_DIR}/cuda/*.cu)
    list(APPEND srcs ${cuda_srcs})
  endif()
  add_library(zt_${M_NAME} STATIC ${srcs})
  target_include_directories(zt_${M_NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(zt_${M_NAME} PUBLIC ${M_DEPS})
  if(ZT_WITH_CUDA)
    target_compile_definitions(zt_${M_NAME} PUBLIC ZT_WITH_CUDA=1)
    target_link_libraries(zt_${M_NAME} PUBLIC ${ZT_CUDA_LIBS})
    set_target_properties(zt_${M_NAME} PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
  endif()
endfunction()

function(zt_test_dir)
  cmake_parse_arguments(T "" "DIR;LABEL" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${T_DIR}/*.cc)
  if(NOT srcs)
    return()
  endif()
  string(REPLACE "/" "_" tname ${T_DIR})
  add_executable(test_${tname} ${srcs})
  target_link_libraries(test_${tname} PRIVATE ${T_DEPS} zt_test_support GTest::gtest GTest::gtest_main)
  # Test inputs are aggregates with defaults; brace-initialising a prefix of them is intended.
  target_compile_options(test_${tname} PRIVATE -Wno-missing-field-initializers)
  if(NOT T_LABEL)
    set(T_LABEL cpu)
  endif()
  gtest_discover_tests(test_${tname}
    PROPERTIES LABELS ${T_LABEL}
    DISCOVERY_TIMEOUT 60
    TEST_PREFIX "${tname}.")
endfunction()
