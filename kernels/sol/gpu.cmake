# Speed-of-light parts for GPUs, include()d from kernels/CMakeLists.txt after
# ratchet_kernels is defined:
#   - the datasheet peak table (plain C++, always built, tested in CI);
#   - ratchet-gpu-probe, the calibration helper the worker runs at start
#     (CUDA runtime + cuBLAS), built only when the CUDA toolkit is found, so
#     that neither `ratchet` nor a CUDA-less build machine needs CUDA.
# gpu_peaks.cc is part of ratchet_kernels (kernels/CMakeLists.txt).

add_executable(kernels_gpu_peaks_test ${CMAKE_CURRENT_LIST_DIR}/gpu_peaks_test.cc)
target_link_libraries(kernels_gpu_peaks_test PRIVATE ratchet_kernels GTest::gtest_main)
gtest_discover_tests(kernels_gpu_peaks_test TEST_PREFIX "kernels." DISCOVERY_TIMEOUT 30)

if(NOT DEFINED CUDAToolkit_FOUND)
  find_package(CUDAToolkit QUIET)
endif()
if(CUDAToolkit_FOUND)
  add_library(ratchet_gpu_calibration STATIC ${CMAKE_CURRENT_LIST_DIR}/gpu_calibration.cc)
  target_link_libraries(ratchet_gpu_calibration
    PUBLIC CUDA::cudart CUDA::cublas
    PRIVATE ratchet_kernels)
  add_executable(ratchet-gpu-probe ${CMAKE_CURRENT_LIST_DIR}/gpu_probe_main.cc)
  target_link_libraries(ratchet-gpu-probe PRIVATE ratchet_gpu_calibration)
  # The GPU machines keep CUDA where the build machines do; the rpath finds
  # libcublas there without LD_LIBRARY_PATH.
  set_target_properties(ratchet-gpu-probe PROPERTIES
    BUILD_RPATH "${CUDAToolkit_LIBRARY_DIR}" INSTALL_RPATH "${CUDAToolkit_LIBRARY_DIR}")

  # The NCCL all-reduce bus bandwidth (nccl_busbw.h), optional: without
  # nccl.h the probe builds without it and reports 0. Only the header is
  # needed to build; libnccl is opened at run time (the loader's search, then
  # the library found here), so that a GPU machine without it still gets
  # the rest of the calibration. NCCL_HOME, else the CUDA toolkit's folders.
  find_path(RATCHET_NCCL_INCLUDE_DIR nccl.h
    HINTS $ENV{NCCL_HOME}/include ${CUDAToolkit_INCLUDE_DIRS})
  find_library(RATCHET_NCCL_LIBRARY NAMES nccl libnccl.so.2
    HINTS $ENV{NCCL_HOME}/lib ${CUDAToolkit_LIBRARY_DIR})
  if(RATCHET_NCCL_INCLUDE_DIR)
    message(STATUS "ratchet-gpu-probe: NCCL all-reduce from ${RATCHET_NCCL_INCLUDE_DIR} "
                   "(library at run time; found: ${RATCHET_NCCL_LIBRARY})")
    target_sources(ratchet_gpu_calibration PRIVATE ${CMAKE_CURRENT_LIST_DIR}/nccl_busbw.cc)
    target_include_directories(ratchet_gpu_calibration PRIVATE ${RATCHET_NCCL_INCLUDE_DIR})
    target_compile_definitions(ratchet_gpu_calibration PUBLIC RATCHET_HAVE_NCCL=1)
    if(RATCHET_NCCL_LIBRARY)
      get_filename_component(_ratchet_nccl_dir "${RATCHET_NCCL_LIBRARY}" DIRECTORY)
      target_compile_definitions(ratchet_gpu_calibration PRIVATE
        RATCHET_NCCL_LIBRARY_PATH="${_ratchet_nccl_dir}/libnccl.so.2")
    endif()
    target_link_libraries(ratchet_gpu_calibration PUBLIC ${CMAKE_DL_LIBS})
  else()
    message(STATUS "ratchet-gpu-probe: nccl.h not found; no NCCL all-reduce figure")
  endif()

  # The probe's NCCL path and its JSON: built wherever the probe is; the
  # measurements skip themselves without a GPU (or without NCCL). Its name
  # has "gpu" in it, so deploy/bundle.sh packs it for the GPU machines.
  add_executable(kernels_gpu_nccl_test ${CMAKE_CURRENT_LIST_DIR}/nccl_busbw_test.cc)
  target_link_libraries(kernels_gpu_nccl_test PRIVATE ratchet_gpu_calibration
    nlohmann_json::nlohmann_json GTest::gtest_main)
  target_compile_definitions(kernels_gpu_nccl_test PRIVATE
    RATCHET_GPU_PROBE_BIN="$<TARGET_FILE:ratchet-gpu-probe>")
  set_target_properties(kernels_gpu_nccl_test PROPERTIES
    BUILD_RPATH "${CUDAToolkit_LIBRARY_DIR}" INSTALL_RPATH "${CUDAToolkit_LIBRARY_DIR}")
  add_dependencies(kernels_gpu_nccl_test ratchet-gpu-probe)
  gtest_discover_tests(kernels_gpu_nccl_test TEST_PREFIX "kernels." DISCOVERY_TIMEOUT 30
    PROPERTIES TIMEOUT 300)
else()
  message(STATUS "CUDA toolkit not found: ratchet-gpu-probe is not built; "
                 "workers on this build run CPU-only")
endif()

# The oracle's request/manifest protocol on the CPU, with the first python
# that imports torch ($RATCHET_PYTHON, /usr/bin/python3, python3); skipped
# (exit 77) where none does.
add_test(NAME kernels.oracle_protocol
  COMMAND sh -c "for py in \"$RATCHET_PYTHON\" /usr/bin/python3 python3; do [ -n \"$py\" ] && \"$py\" -c 'import torch' 2>/dev/null && exec \"$py\" \"$0\"; done; echo 'no python imports torch'; exit 77"
          ${CMAKE_CURRENT_LIST_DIR}/../oracle/oracle_test.py)
set_tests_properties(kernels.oracle_protocol PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
