# The layers (docs/architecture.md, "Layers") enforced by the compiler.
#
# The table is scripts/check_layers.py's ALLOWED, and only there: configure
# runs it with --make-roots, which builds ${CMAKE_BINARY_DIR}/layers/<layer>/
# (coordinator/store: layers/coordinator-store), an include root holding
# links to only the folders that layer may include (coordinator-store holds
# coordinator/store but not the rest of coordinator/), and layers.cmake with
# the list of layers.
#
# ratchet_layers_apply(), called once at the end of the top CMakeLists.txt,
# then walks every library and executable of the project:
#   - a production target (its folder is a layer's, and it compiles any
#     source not named *_test.cc) gets its layer's root, PRIVATE, so that
#     nothing of it reaches what links it: each target has its own root;
#   - a test (a target of tests/, or one that compiles only *_test.cc) gets
#     the whole repository;
#   - the generated API headers (build/proto) come to all from ratchet_proto.
# A target given ${PROJECT_SOURCE_DIR} itself (the whole tree) fails the
# configure. Every target depends on check_layers (the lint: ../ paths and
# includes beside the including file, which include roots cannot stop), so
# building any one target runs it.

set(RATCHET_LAYER_SCRIPT ${PROJECT_SOURCE_DIR}/scripts/check_layers.py)
set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${RATCHET_LAYER_SCRIPT})
execute_process(
  COMMAND ${RATCHET_PYTHON3} ${RATCHET_LAYER_SCRIPT} --make-roots ${CMAKE_BINARY_DIR}/layers
          ${PROJECT_SOURCE_DIR}
  RESULT_VARIABLE _ratchet_layers_rc)
if(NOT _ratchet_layers_rc EQUAL 0)
  message(FATAL_ERROR "scripts/check_layers.py --make-roots failed")
endif()
include(${CMAKE_BINARY_DIR}/layers/layers.cmake)  # RATCHET_LAYERS

# The layer of a path relative to the repository ("" when none): the longest
# layer folder that holds it.
function(ratchet_layer_of rel out)
  set(best "")
  string(LENGTH "${best}" best_length)
  foreach(layer IN LISTS RATCHET_LAYERS)
    if(rel STREQUAL layer OR rel MATCHES "^${layer}/")
      string(LENGTH "${layer}" length)
      if(length GREATER best_length)
        set(best ${layer})
        set(best_length ${length})
      endif()
    endif()
  endforeach()
  set(${out} "${best}" PARENT_SCOPE)
endfunction()

function(_ratchet_targets_in dir out)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    _ratchet_targets_in(${sub} more)
    list(APPEND targets ${more})
  endforeach()
  set(${out} ${targets} PARENT_SCOPE)
endfunction()

function(ratchet_layers_apply)
  _ratchet_targets_in(${PROJECT_SOURCE_DIR} targets)
  set(production_sources "")
  foreach(t IN LISTS targets)
    get_target_property(type ${t} TYPE)
    if(NOT type MATCHES "^(STATIC_LIBRARY|SHARED_LIBRARY|MODULE_LIBRARY|OBJECT_LIBRARY|EXECUTABLE)$")
      continue()
    endif()
    add_dependencies(${t} check_layers)
    get_target_property(dir ${t} SOURCE_DIR)
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${dir})
    # Its layer: that of its sources (of the folder that defines it when
    # they are all generated); one target, one layer.
    get_target_property(sources ${t} SOURCES)
    set(test TRUE)
    set(absolute "")
    set(layers "")
    foreach(s IN LISTS sources)
      if(s MATCHES "^\\$<")
        continue()
      endif()
      get_filename_component(s ${s} ABSOLUTE BASE_DIR ${dir})
      if(NOT s MATCHES "_test\\.(cc|cu)$")
        set(test FALSE)
        file(RELATIVE_PATH srel ${PROJECT_SOURCE_DIR} ${s})
        if(NOT srel MATCHES "^\\.\\./")
          ratchet_layer_of("${srel}" slayer)
          if(NOT slayer STREQUAL "")
            list(APPEND layers ${slayer})
          endif()
        endif()
      endif()
      list(APPEND absolute ${s})
    endforeach()
    list(REMOVE_DUPLICATES layers)
    list(LENGTH layers count)
    if(rel STREQUAL "tests" OR rel MATCHES "^tests/" OR test)
      set(layer tests)
    elseif(count EQUAL 0)
      ratchet_layer_of("${rel}" layer)
    elseif(count EQUAL 1)
      set(layer "${layers}")
    else()
      message(FATAL_ERROR "${t} (defined in ${dir}) compiles sources of several layers "
        "(${layers}); give each layer a target of its own")
    endif()
    # Whatever it says, a production target may not see the whole tree, nor
    # give it to what links it.
    set(properties INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT layer STREQUAL "tests")
      list(APPEND properties INCLUDE_DIRECTORIES)
    endif()
    foreach(property IN LISTS properties)
      get_target_property(dirs ${t} ${property})
      foreach(d IN LISTS dirs)
        if(NOT d MATCHES "^\\$<" AND NOT IS_ABSOLUTE "${d}")
          set(d ${dir}/${d})
        endif()
        cmake_path(NORMAL_PATH d OUTPUT_VARIABLE d)
        cmake_path(NORMAL_PATH PROJECT_SOURCE_DIR OUTPUT_VARIABLE top)
        string(REGEX REPLACE "/$" "" d "${d}")
        string(REGEX REPLACE "/$" "" top "${top}")
        if(d STREQUAL top)
          message(FATAL_ERROR "${t} (defined in ${dir}) has the repository as an include "
            "directory (${property}), which shows it every layer: drop it; "
            "cmake/layers.cmake gives each target the include root of its layer")
        endif()
      endforeach()
    endforeach()
    if(layer STREQUAL "tests")
      target_include_directories(${t} PRIVATE ${PROJECT_SOURCE_DIR})
    elseif(NOT layer STREQUAL "")
      string(REPLACE "/" "-" root ${layer})
      target_include_directories(${t} PRIVATE ${CMAKE_BINARY_DIR}/layers/${root})
      list(APPEND production_sources ${absolute})
    endif()
  endforeach()
  # The lint checks a *_test.cc that a production target compiles.
  list(JOIN production_sources "\n" text)
  file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/layers/production_sources.txt
       CONTENT "${text}\n" @ONLY)
endfunction()
