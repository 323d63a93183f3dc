"""``ros2 launch seem_ros seem.launch.py [image:=/camera/image_raw] [params_file:=...]``.

Starts ``seem_node`` (a lifecycle node that configures and activates itself) with the
parameters of ``config/seem.yaml`` and remaps its inputs to the camera. Launch arguments:

* ``params_file``: parameter file (default: the installed ``config/seem.yaml``);
* ``namespace``: node namespace (default: none);
* ``image``, ``clicked_point``: where the camera and RViz publish (``image/compressed``,
  ``<image>_mouse_left`` and ``camera_info`` follow ``image``, as with image_transport:
  ``image:=/camera/image_raw`` reads ``/camera/camera_info``);
* ``camera_info``: only where the camera info is not beside the image;
* ``model_path``: weights, overriding the file's ``model_path`` when not empty;
* ``autostart``: ``true`` (default) configures and activates the node; ``false`` leaves it
  unconfigured for a lifecycle manager;
* ``rviz``: ``true`` also starts RViz with the package's ``rviz/seem.rviz``;
* ``log_level``: ``info`` by default.
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import LifecycleNode, Node

from launch import LaunchDescription

PACKAGE = "seem_ros"


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    default_params = os.path.join(share, "config", "seem.yaml")
    arguments = [
        DeclareLaunchArgument(
            "params_file",
            default_value=default_params,
            description="parameter file (config/seem.yaml layout)",
        ),
        DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
        DeclareLaunchArgument(
            "image", default_value="image", description="camera image topic (sensor_msgs/Image)"
        ),
        DeclareLaunchArgument(
            "camera_info",
            default_value="camera_info",
            description="camera info topic (sensor_msgs/CameraInfo); default: beside the image",
        ),
        DeclareLaunchArgument(
            "clicked_point",
            default_value="/clicked_point",
            description="RViz 'Publish Point' topic",
        ),
        DeclareLaunchArgument(
            "model_path",
            default_value="",
            description="weights (.safetensors); empty: the params file's",
        ),
        DeclareLaunchArgument(
            "autostart",
            default_value="true",
            description="configure and activate the lifecycle node at start",
        ),
        DeclareLaunchArgument("rviz", default_value="false", description="also start RViz"),
        DeclareLaunchArgument("log_level", default_value="info", description="ROS log level"),
    ]
    remappings = [
        ("image", LaunchConfiguration("image")),
        ("camera_info", LaunchConfiguration("camera_info")),
        ("/clicked_point", LaunchConfiguration("clicked_point")),
    ]
    model_given = PythonExpression(["'", LaunchConfiguration("model_path"), "' != ''"])
    autostart = {"autostart": LaunchConfiguration("autostart")}  # "true"/"false": YAML bools
    common = {
        "package": PACKAGE,
        "executable": "seem_node",
        "name": "seem_node",
        "namespace": LaunchConfiguration("namespace"),
        "remappings": remappings,
        "output": "screen",
        "arguments": ["--ros-args", "--log-level", LaunchConfiguration("log_level")],
    }
    with_model = LifecycleNode(
        **common,
        parameters=[
            LaunchConfiguration("params_file"),
            {"model_path": LaunchConfiguration("model_path")},
            autostart,
        ],
        condition=IfCondition(model_given),
    )
    without_model = LifecycleNode(
        **common,
        parameters=[LaunchConfiguration("params_file"), autostart],
        condition=UnlessCondition(model_given),
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", os.path.join(share, "rviz", "seem.rviz")],
        condition=IfCondition(LaunchConfiguration("rviz")),
    )
    return LaunchDescription([*arguments, with_model, without_model, rviz])
