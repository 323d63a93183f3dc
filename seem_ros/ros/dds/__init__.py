"""Cyclone DDS adapter that speaks the ROS 2 wire protocol without rclpy.

It moves serialized ROS 2 messages (CDR with the encapsulation header, as
``seem_ros.ros.messages`` produces them) and nothing else:

* ``DdsContext``: the participant, domain id and localhost-only discovery (``participant``);
* ``RawPublisher`` / ``RawSubscriber``: bytes in, bytes out on ROS topics (``raw_topic``);
* ``RawServiceServer`` / ``RawServiceClient``: rmw_cyclonedds services (``services``);
* ROS name and type mangling (``names``) and QoS profiles (``qos``).
"""

from seem_ros.ros.dds.names import dds_type_name, service_topic_names, topic_name
from seem_ros.ros.dds.participant import DdsContext
from seem_ros.ros.dds.qos import DEFAULT, SENSOR_DATA, SERVICES_DEFAULT, QosProfile
from seem_ros.ros.dds.raw_topic import RawPublisher, RawSample, RawSubscriber
from seem_ros.ros.dds.services import RawServiceClient, RawServiceServer

__all__ = [
    "DEFAULT",
    "SENSOR_DATA",
    "SERVICES_DEFAULT",
    "DdsContext",
    "QosProfile",
    "RawPublisher",
    "RawSample",
    "RawServiceClient",
    "RawServiceServer",
    "RawSubscriber",
    "dds_type_name",
    "service_topic_names",
    "topic_name",
]
