"""ROS 2 side of seem_ros.

The node is ``node`` (the rclpy lifecycle node, rclpy imported only when it runs) around
``node_core``; the middleware-free pieces import no ROS: ``messages`` (typestore, CDR,
builders), ``image_codec`` (Image <-> numpy), ``bag_io`` (rosbag2 in and out). Import the
submodule you need; this package module deliberately imports nothing, so the library, the
CLI and bag processing work without ROS 2 installed.
"""
