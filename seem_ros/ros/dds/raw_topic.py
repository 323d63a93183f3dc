"""Publish and receive already-serialized ROS 2 messages over Cyclone DDS.

The Python IDL serializer of cyclonedds is slow for large messages (20-30 ms to
write one 640x480 rgb8 image through a ``sequence[uint8]`` field), so payloads
never go through it: ``RawPublisher`` hands the CDR bytes to the C layer's
``ddspy_write`` and ``RawSubscriber`` gets them back from ``ddspy_take``,
encapsulation header included, exactly as they travel on the wire. The topic is
still declared with the ROS type (see ``type_support``) so ROS peers match it.

Readers see invalid samples (no data, only an instance state change) when a
writer disposes, unregisters or leaves; they are counted and never delivered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import NamedTuple

# The C layer behind cyclonedds-python; the only way to move pre-serialized bytes.
from cyclonedds._clayer import ddspy_take, ddspy_write, ddspy_write_ts
from cyclonedds.core import (
    DDSException,
    Entity,
    GuardCondition,
    InstanceState,
    ReadCondition,
    SampleState,
    ViewState,
    WaitSet,
)
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from seem_ros.ros.dds import cdr_framing
from seem_ros.ros.dds.matching import PUBLICATION_MATCHED, SUBSCRIPTION_MATCHED, wait_for_match
from seem_ros.ros.dds.names import topic_name
from seem_ros.ros.dds.participant import CloseOnExit, DdsContext, delete_entity
from seem_ros.ros.dds.qos import DEFAULT, QosProfile, to_cyclone_qos
from seem_ros.ros.dds.type_support import topic_struct

_LOG = logging.getLogger(__name__)
_ANY_STATE = SampleState.Any | ViewState.Any | InstanceState.Any
_TAKE_BATCH = 32


class RawSample(NamedTuple):
    """One received message."""

    cdr: bytes  # serialized message, encapsulation header included
    source_timestamp_ns: int  # writer's clock, ns since the Unix epoch
    publication_handle: int  # instance handle of the writer that sent it


def create_topic(
    context: DdsContext, dds_topic: str, ros_type: str, *, with_request_header: bool = False
) -> Topic:
    """Declare ``dds_topic`` with the DDS form of ``ros_type`` in ``context``'s participant."""
    struct = topic_struct(context.typestore, ros_type, with_request_header=with_request_header)
    return Topic(context.participant, dds_topic, struct)


class _Endpoint(CloseOnExit):
    """What ``RawWriter`` and ``RawReader`` share: the topic, the lock and the closed flag."""

    def __init__(
        self, context: DdsContext, dds_topic: str, ros_type: str, *, with_request_header: bool
    ) -> None:
        self._context = context
        self.dds_topic = dds_topic
        self._topic = create_topic(
            context, dds_topic, ros_type, with_request_header=with_request_header
        )
        self._lock = threading.Lock()
        self._closed = False

    def _mark_closed(self) -> bool:
        """Set the closed flag; False when it already was, so ``close()`` stays idempotent."""
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            return True

    def _wait_for_peers(
        self, entity: Entity, status: int, matched: Callable[[], int], count: int, timeout_s: float
    ) -> bool:
        """Block until ``matched() >= count``, woken by ``status`` changes of ``entity``."""
        return wait_for_match(
            self._context.participant, [(entity, status)], lambda: matched() >= count, timeout_s
        )


class RawWriter(_Endpoint):
    """Writes pre-serialized CDR to a DDS topic; the shared half of publishers and services."""

    def __init__(
        self,
        context: DdsContext,
        dds_topic: str,
        ros_type: str,
        qos: QosProfile,
        *,
        with_request_header: bool = False,
        user_data: bytes | None = None,
    ) -> None:
        super().__init__(context, dds_topic, ros_type, with_request_header=with_request_header)
        self.writer = DataWriter(context.participant, self._topic, to_cyclone_qos(qos, user_data))

    def write(self, cdr: bytes | bytearray | memoryview, timestamp_ns: int | None = None) -> None:
        """Send one serialized message (source timestamp ``timestamp_ns`` or now).

        Raises:
            TypeError, ValueError: ``cdr`` is not a plain-CDR serialized message.
            RuntimeError: The writer is closed.
            DDSException: Cyclone rejected the sample (e.g. it does not match the type).
        """
        cdr_framing.check_cdr(cdr)
        payload = cdr_framing.pad_for_wire(cdr)
        with self._lock:
            if self._closed:
                raise RuntimeError(f"writer on {self.dds_topic} is closed")
            if timestamp_ns is None:
                status = ddspy_write(self.writer._ref, payload)
            else:
                status = ddspy_write_ts(self.writer._ref, payload, timestamp_ns)
        if status < 0:
            raise DDSException(status, f"writing a sample on {self.dds_topic}")

    @property
    def matched_subscriptions(self) -> int:
        """Number of readers currently matched with this writer."""
        return len(self.writer.get_matched_subscriptions())

    def wait_for_subscriptions(self, count: int = 1, timeout_s: float = 5.0) -> bool:
        """Block until at least ``count`` readers match; return whether they did in time."""
        return self._wait_for_peers(
            self.writer, PUBLICATION_MATCHED, lambda: self.matched_subscriptions, count, timeout_s
        )

    def close(self) -> None:
        if not self._mark_closed():
            return
        delete_entity(self.writer)
        delete_entity(self._topic)


class RawReader(_Endpoint):
    """Takes pre-serialized CDR from a DDS topic, optionally on a background thread.

    With ``on_sample`` a daemon thread blocks on a waitset (no polling) and calls
    ``on_sample`` for every valid sample, in arrival order; exceptions it raises
    are logged and do not stop the thread.
    """

    def __init__(
        self,
        context: DdsContext,
        dds_topic: str,
        ros_type: str,
        qos: QosProfile,
        *,
        on_sample: Callable[[RawSample], None] | None = None,
        with_request_header: bool = False,
        user_data: bytes | None = None,
    ) -> None:
        super().__init__(context, dds_topic, ros_type, with_request_header=with_request_header)
        self.reader = DataReader(context.participant, self._topic, to_cyclone_qos(qos, user_data))
        self._invalid_samples = 0
        self._on_sample = on_sample
        self._thread: threading.Thread | None = None
        if on_sample is not None:
            self._condition = ReadCondition(self.reader, _ANY_STATE)
            # Waitset triggers do not wake a blocked wait; a guard condition does.
            self._wakeup = GuardCondition(context.participant)
            self._waitset = WaitSet(context.participant)
            self._waitset.attach(self._condition)
            self._waitset.attach(self._wakeup)
            self._thread = threading.Thread(
                target=self._dispatch, name=f"dds-reader {dds_topic}", daemon=True
            )
            self._thread.start()

    @property
    def invalid_samples_skipped(self) -> int:
        """How many invalid samples (state changes without data) were taken and dropped."""
        with self._lock:
            return self._invalid_samples

    def take(self, max_samples: int = _TAKE_BATCH) -> list[RawSample]:
        """Take up to ``max_samples`` received valid samples without blocking.

        Raises:
            ValueError: ``max_samples`` < 1.
            RuntimeError: The reader is closed.
        """
        if max_samples < 1:
            raise ValueError(f"max_samples must be >= 1, got {max_samples}")
        with self._lock:
            if self._closed:
                raise RuntimeError(f"reader on {self.dds_topic} is closed")
            taken = ddspy_take(self.reader._ref, _ANY_STATE, max_samples)
            if isinstance(taken, int):
                raise DDSException(taken, f"taking samples from {self.dds_topic}")
            samples = []
            for payload, info in taken:
                if not info.valid_data:
                    self._invalid_samples += 1
                    continue
                samples.append(
                    RawSample(
                        cdr_framing.strip_wire_padding(payload),
                        info.source_timestamp,
                        info.publication_handle,
                    )
                )
            return samples

    def _dispatch(self) -> None:
        assert self._on_sample is not None
        while True:
            with self._lock:
                if self._closed:  # close() from a callback already deleted the waitset
                    return
            self._waitset.wait(duration(infinite=True))
            while batch := self._take_for_dispatch():
                for sample in batch:
                    try:
                        self._on_sample(sample)
                    except Exception:
                        _LOG.exception("callback for %s raised", self.dds_topic)

    def _take_for_dispatch(self) -> list[RawSample]:
        try:
            return self.take(_TAKE_BATCH)
        except RuntimeError:  # closed while dispatching
            return []

    @property
    def matched_publications(self) -> int:
        """Number of writers currently matched with this reader."""
        return len(self.reader.get_matched_publications())

    def wait_for_publications(self, count: int = 1, timeout_s: float = 5.0) -> bool:
        """Block until at least ``count`` writers match; return whether they did in time."""
        return self._wait_for_peers(
            self.reader, SUBSCRIPTION_MATCHED, lambda: self.matched_publications, count, timeout_s
        )

    def close(self) -> None:
        """Stop the dispatch thread (unless called from it) and delete the reader."""
        if not self._mark_closed():
            return
        if self._thread is not None:
            self._wakeup.set(True)
            if threading.current_thread() is not self._thread:
                self._thread.join()
            delete_entity(self._waitset)
            delete_entity(self._wakeup)
            delete_entity(self._condition)
        delete_entity(self.reader)
        delete_entity(self._topic)


class RawPublisher(RawWriter):
    """Publishes serialized messages of ``ros_type`` on a ROS topic.

    Args:
        context: Participant and naming context.
        topic: ROS topic name, relative names resolve in ``context.namespace``.
        ros_type: ROS type, e.g. ``sensor_msgs/msg/Image``.
        qos: ROS QoS profile.
    """

    def __init__(
        self, context: DdsContext, topic: str, ros_type: str, qos: QosProfile = DEFAULT
    ) -> None:
        super().__init__(context, topic_name(topic, context.namespace), ros_type, qos)
        context.register(self)

    def publish(self, cdr: bytes | bytearray | memoryview, timestamp_ns: int | None = None) -> None:
        """Publish one serialized message (encapsulation header included)."""
        self.write(cdr, timestamp_ns)

    def close(self) -> None:
        self._context.unregister(self)
        super().close()


class RawSubscriber(RawReader):
    """Receives serialized messages of ``ros_type`` from a ROS topic.

    Args:
        context: Participant and naming context.
        topic: ROS topic name, relative names resolve in ``context.namespace``.
        ros_type: ROS type, e.g. ``sensor_msgs/msg/Image``.
        callback: Called as ``callback(cdr, source_timestamp_ns)`` from a background
            thread for each message. Without it, poll with ``take()``.
        qos: ROS QoS profile.
    """

    def __init__(
        self,
        context: DdsContext,
        topic: str,
        ros_type: str,
        callback: Callable[[bytes, int], None] | None = None,
        qos: QosProfile = DEFAULT,
    ) -> None:
        on_sample = None
        if callback is not None:

            def on_sample(sample: RawSample) -> None:
                callback(sample.cdr, sample.source_timestamp_ns)

        super().__init__(
            context, topic_name(topic, context.namespace), ros_type, qos, on_sample=on_sample
        )
        context.register(self)

    def close(self) -> None:
        self._context.unregister(self)
        super().close()
