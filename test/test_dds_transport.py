"""Specification of seem_ros.ros.dds: the ROS 2 wire protocol over Cyclone DDS.

Every test uses its own random domain in 100..230 with localhost-only discovery.
Tests marked "across processes" talk to an echo peer in a child process, so the
bytes cross the loopback interface; the others use two participants in this
process, which Cyclone connects through its in-process path.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from cyclonedds.core import Policy, Qos
from cyclonedds.domain import DomainParticipant
from cyclonedds.idl import make_idl_struct
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from seem_ros.ros.dds import names
from seem_ros.ros.dds.participant import DdsContext, delete_entity
from seem_ros.ros.dds.qos import DEFAULT, SENSOR_DATA, Durability, Reliability
from seem_ros.ros.dds.raw_topic import RawPublisher, RawSubscriber
from seem_ros.ros.dds.services import (
    RawServiceClient,
    RawServiceServer,
    RequestHeader,
    unwrap_request,
    wrap_request,
)
from seem_ros.ros.messages import TYPESTORE

REPO_ROOT = Path(__file__).resolve().parents[1]
STRING = "std_msgs/msg/String"
IMAGE = "sensor_msgs/msg/Image"
TRIGGER_REQUEST = "std_srvs/srv/Trigger_Request"
TRIGGER_RESPONSE = "std_srvs/srv/Trigger_Response"
MATCH_TIMEOUT_S = 3.0
StartEcho = Callable[[str, int], "subprocess.Popen[str]"]


def serialize(ros_type: str, **fields: object) -> bytes:
    return bytes(TYPESTORE.serialize_cdr(TYPESTORE.types[ros_type](**fields), ros_type))


def rgb8_image(height: int = 480, width: int = 640) -> bytes:
    time_type = TYPESTORE.types["builtin_interfaces/msg/Time"]
    header = TYPESTORE.types["std_msgs/msg/Header"](
        stamp=time_type(sec=1_700_000_000, nanosec=5), frame_id="camera_optical"
    )
    pixels = np.random.default_rng(0).integers(0, 256, height * width * 3, dtype=np.uint8)
    return serialize(
        IMAGE,
        header=header,
        height=height,
        width=width,
        encoding="rgb8",
        is_bigendian=0,
        step=width * 3,
        data=pixels,
    )


def wait_until(condition: Callable[[], bool], timeout_s: float = MATCH_TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class Inbox:
    """Collects (cdr, source_timestamp_ns) from a subscriber callback."""

    def __init__(self) -> None:
        self.messages: list[tuple[bytes, int]] = []
        self.arrived = threading.Event()

    def __call__(self, cdr: bytes, source_timestamp_ns: int) -> None:
        self.messages.append((cdr, source_timestamp_ns))
        self.arrived.set()


@pytest.fixture
def domain_id() -> int:
    return random.randint(100, 230)


@pytest.fixture
def contexts(domain_id: int) -> Iterator[tuple[DdsContext, DdsContext]]:
    with (
        DdsContext(domain_id, localhost_only=True) as sender,
        DdsContext(domain_id, localhost_only=True) as receiver,
    ):
        yield sender, receiver


# Child process: republishes every message from "echo_in" on "echo_out".
ECHO_PEER = """
import sys, threading
from seem_ros.ros.dds import DdsContext, RawPublisher, RawSubscriber
domain_id, ros_type, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
with DdsContext(domain_id, localhost_only=True) as context:
    echo = RawPublisher(context, "echo_out", ros_type)
    done = threading.Event()
    seen = []
    def republish(cdr, _stamp):
        echo.publish(cdr)
        seen.append(cdr)
        if len(seen) == count:
            done.set()
    incoming = RawSubscriber(context, "echo_in", ros_type, callback=republish)
    if echo.wait_for_subscriptions(1, 10) and incoming.wait_for_publications(1, 10):
        print("ready", flush=True)
        done.wait(10)
"""


@pytest.fixture
def echo_peer(domain_id: int) -> Iterator[StartEcho]:
    children: list[subprocess.Popen[str]] = []

    def start(ros_type: str, count: int) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        child = subprocess.Popen(
            [sys.executable, "-c", ECHO_PEER, str(domain_id), ros_type, str(count)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        children.append(child)
        return child

    yield start
    for child in children:
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def echo_round_trip(domain_id: int, start_echo: StartEcho, ros_type: str, cdr: bytes) -> bytes:
    """Publish ``cdr`` to a child-process echo peer and return what comes back."""
    child = start_echo(ros_type, 1)
    with DdsContext(domain_id, localhost_only=True) as context:
        inbox = Inbox()
        returned = RawSubscriber(context, "echo_out", ros_type, callback=inbox)
        outgoing = RawPublisher(context, "echo_in", ros_type)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        assert outgoing.wait_for_subscriptions(1, MATCH_TIMEOUT_S)
        assert returned.wait_for_publications(1, MATCH_TIMEOUT_S)
        outgoing.publish(cdr)
        assert inbox.arrived.wait(MATCH_TIMEOUT_S), "echoed message never arrived"
        return inbox.messages[0][0]


# --- names -----------------------------------------------------------------------------


def test_relative_topic_in_root_namespace_maps_to_rt_prefix() -> None:
    assert names.topic_name("image") == "rt/image"


def test_absolute_topic_keeps_its_namespaces() -> None:
    assert names.topic_name("/seem/detections") == "rt/seem/detections"


def test_relative_topic_resolves_in_node_namespace() -> None:
    assert names.topic_name("overlay", "/robot1/seem") == "rt/robot1/seem/overlay"


def test_private_topic_resolves_under_node_name() -> None:
    assert names.topic_name("~/debug", "/robot1", node_name="seem") == "rt/robot1/seem/debug"


def test_invalid_topic_name_is_rejected_with_reason() -> None:
    with pytest.raises(ValueError, match="token '9lives'"):
        names.topic_name("/seem/9lives")


def test_message_type_maps_to_dds_type_name() -> None:
    assert names.dds_type_name(IMAGE) == "sensor_msgs::msg::dds_::Image_"


def test_malformed_type_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="expected 'pkg/msg/Name'"):
        names.dds_type_name("sensor_msgs/Image")


def test_service_maps_to_request_and_reply_topics() -> None:
    assert names.service_topic_names("seem/reset") == ("rq/seem/resetRequest", "rr/seem/resetReply")


def test_service_type_maps_to_request_and_response_types() -> None:
    types = names.service_type_names("std_srvs/srv/Trigger")
    assert types.request_dds == "std_srvs::srv::dds_::Trigger_Request_"
    assert types.response_dds == "std_srvs::srv::dds_::Trigger_Response_"
    assert types.request_ros == TRIGGER_REQUEST


# --- QoS -------------------------------------------------------------------------------


def test_sensor_data_profile_is_best_effort_keep_last_5_volatile() -> None:
    assert (SENSOR_DATA.reliability, SENSOR_DATA.depth, SENSOR_DATA.durability) == (
        Reliability.BEST_EFFORT,
        5,
        Durability.VOLATILE,
    )


def test_reliability_parameter_overrides_profile() -> None:
    assert SENSOR_DATA.with_reliability("reliable").reliability is Reliability.RELIABLE


def test_unknown_reliability_parameter_is_rejected() -> None:
    with pytest.raises(ValueError, match="'reliable' or 'best_effort'"):
        DEFAULT.with_reliability("sometimes")


def test_latched_profile_is_transient_local() -> None:
    assert DEFAULT.latched().durability is Durability.TRANSIENT_LOCAL


# --- topics ----------------------------------------------------------------------------


def test_string_arrives_byte_identical_at_another_participant(contexts) -> None:
    sender, receiver = contexts
    inbox = Inbox()
    subscriber = RawSubscriber(receiver, "chatter", STRING, callback=inbox)
    publisher = RawPublisher(sender, "/chatter", STRING)
    assert publisher.wait_for_subscriptions(1, MATCH_TIMEOUT_S)
    cdr = serialize(STRING, data="hello")  # 14 bytes: padded on the wire, restored on receipt

    publisher.publish(cdr, timestamp_ns=1_700_000_000_000_000_042)

    assert inbox.arrived.wait(MATCH_TIMEOUT_S)
    assert inbox.messages == [(cdr, 1_700_000_000_000_000_042)]
    assert subscriber.invalid_samples_skipped == 0


def test_string_crosses_processes_byte_identical(domain_id, echo_peer) -> None:
    cdr = serialize(STRING, data="across the loopback")
    assert echo_round_trip(domain_id, echo_peer, STRING, cdr) == cdr


def test_rgb8_image_crosses_processes_intact(domain_id, echo_peer) -> None:
    cdr = rgb8_image()
    echoed = echo_round_trip(domain_id, echo_peer, IMAGE, cdr)
    image = TYPESTORE.deserialize_cdr(echoed, IMAGE)
    assert echoed == cdr
    assert (image.height, image.width, image.encoding, image.data.size) == (
        480,
        640,
        "rgb8",
        921600,
    )


def test_take_polls_without_callback(contexts) -> None:
    sender, receiver = contexts
    subscriber = RawSubscriber(receiver, "polled", STRING)
    publisher = RawPublisher(sender, "polled", STRING)
    assert publisher.wait_for_subscriptions(1, MATCH_TIMEOUT_S)
    sent = [serialize(STRING, data=f"message {i}") for i in range(3)]
    for cdr in sent:
        publisher.publish(cdr)

    received: list[bytes] = []

    def all_taken() -> bool:
        received.extend(sample.cdr for sample in subscriber.take())
        return len(received) == len(sent)

    assert wait_until(all_taken)
    assert received == sent


# How a ROS 2 client that is not ours declares std_msgs/String with cyclonedds.
String_ = make_idl_struct("String_", "std_msgs.msg.dds_.String_", {"data": str})


@pytest.fixture
def plain_participant(domain_id: int, contexts) -> Iterator[DomainParticipant]:
    participant = DomainParticipant(domain_id)
    yield participant
    delete_entity(participant)


PLAIN_QOS = Qos(
    Policy.Reliability.Reliable(duration(seconds=1)),
    Policy.History.KeepLast(10),
    Policy.DataRepresentation(use_cdrv0_representation=True),
)


def test_raw_publication_is_decoded_by_a_plain_cyclonedds_reader(
    contexts, plain_participant
) -> None:
    sender, _ = contexts
    topic = Topic(plain_participant, "rt/chatter", String_)
    reader = DataReader(plain_participant, topic, PLAIN_QOS)
    publisher = RawPublisher(sender, "chatter", STRING)
    assert publisher.wait_for_subscriptions(1, MATCH_TIMEOUT_S)

    publisher.publish(serialize(STRING, data="from the raw path"))

    received: list[String_] = []
    assert wait_until(lambda: received.extend(reader.take(10)) or bool(received))
    assert [sample.data for sample in received] == ["from the raw path"]


def test_plain_cyclonedds_publication_is_received_as_ros_cdr(contexts, plain_participant) -> None:
    _, receiver = contexts
    inbox = Inbox()
    RawSubscriber(receiver, "chatter", STRING, callback=inbox)
    topic = Topic(plain_participant, "rt/chatter", String_)
    writer = DataWriter(plain_participant, topic, PLAIN_QOS)
    assert wait_until(lambda: len(writer.get_matched_subscriptions()) == 1)

    writer.write(String_(data="from a plain writer"))

    assert inbox.arrived.wait(MATCH_TIMEOUT_S)
    decoded = TYPESTORE.deserialize_cdr(inbox.messages[0][0], STRING)
    assert decoded.data == "from a plain writer"


def test_invalid_samples_from_a_leaving_writer_are_skipped_and_counted(contexts) -> None:
    sender, receiver = contexts
    inbox = Inbox()
    subscriber = RawSubscriber(receiver, "leaving", STRING, callback=inbox)
    publisher = RawPublisher(sender, "leaving", STRING)
    assert publisher.wait_for_subscriptions(1, MATCH_TIMEOUT_S)
    publisher.publish(serialize(STRING, data="last words"))
    assert inbox.arrived.wait(MATCH_TIMEOUT_S)

    publisher.close()  # the instance becomes not-alive: readers get a sample without data

    assert wait_until(lambda: subscriber.invalid_samples_skipped >= 1)
    assert [TYPESTORE.deserialize_cdr(cdr, STRING).data for cdr, _ in inbox.messages] == [
        "last words"
    ]


def test_publishing_bytes_that_are_not_cdr_is_rejected(contexts) -> None:
    publisher = RawPublisher(contexts[0], "chatter", STRING)
    with pytest.raises(ValueError, match="plain CDR"):
        publisher.publish(b"\x00\x07\x00\x00hello")


def test_unknown_ros_type_is_rejected_with_reason(contexts) -> None:
    with pytest.raises(ValueError, match="not in the typestore"):
        RawPublisher(contexts[0], "chatter", "no_such_pkg/msg/Nothing")


# --- services --------------------------------------------------------------------------


def test_request_payload_is_header_then_message_body() -> None:
    request = serialize(STRING, data="hi")
    payload = wrap_request(
        RequestHeader(writer_guid=0x0102030405060708, sequence_number=7), request
    )
    assert payload[:4] == request[:4]
    assert struct.unpack_from("<Qq", payload, 4) == (0x0102030405060708, 7)
    assert payload[20:] == request[4:]
    assert unwrap_request(payload) == (RequestHeader(0x0102030405060708, 7), request)


def test_trigger_service_round_trip(contexts) -> None:
    server_context, client_context = contexts
    requests: list[bytes] = []

    def reset(request_cdr: bytes) -> bytes:
        requests.append(request_cdr)
        return serialize(TRIGGER_RESPONSE, success=True, message="tracks cleared")

    RawServiceServer(server_context, "seem/reset", "std_srvs/srv/Trigger", reset)
    client = RawServiceClient(client_context, "/seem/reset", "std_srvs/srv/Trigger")
    request = serialize(TRIGGER_REQUEST, structure_needs_at_least_one_member=0)

    response = TYPESTORE.deserialize_cdr(client.call(request, timeout_s=3.0), TRIGGER_RESPONSE)

    assert (response.success, response.message) == (True, "tracks cleared")
    assert requests == [request]


def test_service_call_without_server_times_out(contexts) -> None:
    client = RawServiceClient(contexts[1], "nobody_home", "std_srvs/srv/Trigger")
    request = serialize(TRIGGER_REQUEST, structure_needs_at_least_one_member=0)
    with pytest.raises(TimeoutError, match="not available"):
        client.call(request, timeout_s=0.3)
