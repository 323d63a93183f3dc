# Loaded by tools/setup_ros.py through CMAKE_PROJECT_INCLUDE (right after project()) while it
# builds an interface package against the ROS 2 Jazzy wheels from PyPI. Two adjustments:
#
# 1. The wheels' exported CMake targets (<pkg>__rosidl_generator_py) name the include
#    directories of the machine that built them (/opt/python/cp311-cp311/...). CMake refuses
#    to generate when an imported target names a directory that does not exist. The package's
#    own Python extension gets this interpreter's Python and NumPy include directories from
#    rosidl_generator_py anyway, so at the end of the configure step (after every
#    find_package) the directories that do not exist here are dropped; the rest stays.
#
# 2. Only what Python needs is generated: the C++ type supports (rosidl_typesupport_cpp,
#    _fastrtps_cpp, _introspection_cpp) are left out of rosidl_generate_interfaces. rclpy uses
#    the C type supports, and there is no rclcpp among the wheels; this halves the build.

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

# A macro runs in the scope that touched the list, so filtering there changes what
# ament_execute_extensions(rosidl_generate_idl_interfaces) iterates over.
macro(_seem_ros_drop_cpp_typesupports variable access)
  if(NOT _seem_ros_filtering_extensions)
    set(_seem_ros_filtering_extensions TRUE)
    list(FILTER ${variable} EXCLUDE REGEX "^rosidl_typesupport_(fastrtps_|introspection_)?cpp:")
    set(_seem_ros_filtering_extensions FALSE)
  endif()
endmacro()

variable_watch(AMENT_EXTENSIONS_rosidl_generate_idl_interfaces _seem_ros_drop_cpp_typesupports)
