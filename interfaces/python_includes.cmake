# Injected with -DCMAKE_PROJECT_INCLUDE by scripts/build_interfaces.sh.
# The ROS wheels' exported CMake targets carry the wheel builder's Python include directory
# (/opt/python/cp311-cp311/...), which does not exist here. At the end of configuration, every
# imported target's include directories that name that prefix are replaced by this Python's
# and numpy's include directories.
function(_tts_replace_builder_python_includes)
  execute_process(
    COMMAND "${Python3_EXECUTABLE}" -c
      "import sysconfig, numpy; print(sysconfig.get_paths()['include'] + ';' + numpy.get_include())"
    OUTPUT_VARIABLE _here OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)
  get_property(_targets DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY IMPORTED_TARGETS)
  foreach(_target IN LISTS _targets)
    get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    if(_dirs AND "${_dirs}" MATCHES "/opt/python/")
      list(FILTER _dirs EXCLUDE REGEX "^/opt/python/")
      list(APPEND _dirs ${_here})
      set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_dirs}")
    endif()
  endforeach()
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _tts_replace_builder_python_includes)
