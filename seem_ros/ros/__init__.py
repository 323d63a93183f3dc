"""ROS 2 side of seem_ros.

Shared, middleware-free pieces live here and import neither rclpy nor cyclonedds:
``messages`` (typestore, CDR, builders), ``image_codec`` (Image <-> numpy) and
``bag_io`` (rosbag2 in and out). Import the submodule you need; this package
module deliberately imports nothing so that loading one adapter never pulls in
another's middleware.
"""
