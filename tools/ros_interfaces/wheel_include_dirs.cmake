# Loaded by tools/setup_ros.py through CMAKE_PROJECT_INCLUDE while it builds an interface
# package against the ROS 2 wheels from PyPI.
#
# The wheels' exported CMake targets (<pkg>__rosidl_generator_py) name the include directories
# of the machine that built them (/opt/python/cp311-cp311/...). CMake refuses to generate
# when an imported target names a directory that does not exist. The package's own Python
# extension gets this interpreter's Python and NumPy include directories from
# rosidl_generator_py anyway, so at the end of the configure step (after every find_package)
# this drops the directories that do not exist here and keeps everything else as it was.

function(_seem_ros_drop_missing_include_dirs)
  get_property(targets DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY IMPORTED_TARGETS)
  foreach(target IN LISTS targets)
    get_target_property(dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT dirs)
      continue()
    endif()
    set(kept "")
    foreach(dir IN LISTS dirs)
      if(dir MATCHES "^\\$<" OR EXISTS "${dir}")
        list(APPEND kept "${dir}")
      endif()
    endforeach()
    set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${kept}")
  endforeach()
endfunction()

cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _seem_ros_drop_missing_include_dirs)
