"""ROS 2 services over Cyclone DDS in rmw_cyclonedds_cpp's wire format.

What rmw_cyclonedds_cpp does (``rmw_node.cpp``, ``serdata.hpp``, checked against
the ros2/rmw_cyclonedds sources):

* A service ``/x`` of type ``pkg/srv/T`` is a request topic ``rq/xRequest`` of DDS
  type ``pkg::srv::dds_::T_Request_`` and a reply topic ``rr/xReply`` of type
  ``pkg::srv::dds_::T_Response_``; both use the service QoS profile.
* Every request and reply payload is one CDR stream: encapsulation header, then
  ``cdds_request_header_t {uint64 guid; int64 seq;}``, then the message fields.
  ``guid`` is the DDS instance handle of the client's request writer, ``seq`` a
  counter the client picks. The 16 header bytes keep 8-byte alignment, so the
  message fields that follow are byte-for-byte the message's own CDR body.
* The server copies the header of a request into its reply; a client keeps only
  replies whose ``guid`` equals its own request writer's instance handle.
* Clients put ``clientid=<id>;`` and services ``serviceid=<id>;`` in the USER_DATA
  QoS of their reader and writer. Before replying, a service waits (rmw: up to
  100 ms) until it has matched the reader of the requesting client, found via the
  request writer's ``clientid``; a client counts a service as available when a
  request reader and a reply writer with the same ``serviceid`` are matched
  (or, for peers without ids, when both are matched at all).
"""

from __future__ import annotations

import itertools
import logging
import struct
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from seem_ros.ros.dds import cdr_framing
from seem_ros.ros.dds.matching import (
    PUBLICATION_MATCHED,
    SUBSCRIPTION_MATCHED,
    user_data_entries,
    wait_for_match,
)
from seem_ros.ros.dds.names import service_topic_names, service_type_names
from seem_ros.ros.dds.participant import CloseOnExit, DdsContext
from seem_ros.ros.dds.qos import SERVICES_DEFAULT, QosProfile
from seem_ros.ros.dds.raw_topic import RawReader, RawSample, RawWriter

_LOG = logging.getLogger(__name__)

REQUEST_HEADER_SIZE = 16
# rmw_cyclonedds waits 100 ms; a loaded machine can take longer to discover the client.
CLIENT_READER_WAIT_S = 1.0
_PADDING_BITS = 0x03
_UINT64_MASK = (1 << 64) - 1


class RequestHeader(NamedTuple):
    """rmw_cyclonedds' ``cdds_request_header_t``."""

    writer_guid: int  # instance handle of the client's request writer (uint64)
    sequence_number: int  # int64


def _header_format(little_endian: bool) -> str:
    return "<Qq" if little_endian else ">Qq"


def _encapsulation(cdr: bytes | bytearray | memoryview) -> bytes:
    # Padding recorded for the original length is wrong for the re-framed one.
    return bytes((cdr[0], cdr[1], cdr[2], cdr[3] & ~_PADDING_BITS))


def wrap_request(header: RequestHeader, cdr: bytes | bytearray | memoryview) -> bytes:
    """Payload for a request or reply topic: ``cdr`` with ``header`` in front of its fields.

    Raises:
        TypeError, ValueError: ``cdr`` is not a plain-CDR serialized message.
    """
    little_endian = cdr_framing.check_cdr(cdr)
    packed = struct.pack(_header_format(little_endian), *header)
    return _encapsulation(cdr) + packed + bytes(cdr[cdr_framing.HEADER_SIZE :])


def unwrap_request(payload: bytes) -> tuple[RequestHeader, bytes]:
    """Split a request or reply payload into its header and the message's own CDR.

    Raises:
        ValueError: ``payload`` is not plain CDR or too short to hold the header.
    """
    little_endian = cdr_framing.check_cdr(payload)
    if len(payload) < cdr_framing.HEADER_SIZE + REQUEST_HEADER_SIZE:
        raise ValueError(
            f"service payload has {len(payload)} bytes; the encapsulation and request "
            f"headers alone take {cdr_framing.HEADER_SIZE + REQUEST_HEADER_SIZE}"
        )
    guid, sequence = struct.unpack_from(
        _header_format(little_endian), payload, cdr_framing.HEADER_SIZE
    )
    body = payload[cdr_framing.HEADER_SIZE + REQUEST_HEADER_SIZE :]
    return RequestHeader(guid, sequence), _encapsulation(payload) + body


def _peer_ids(endpoints: list[object | None], key: str) -> set[str]:
    ids = set()
    for endpoint in endpoints:
        if endpoint is not None:
            value = user_data_entries(endpoint.qos).get(key)
            if value is not None:
                ids.add(value)
    return ids


def _open_writer(
    context: DdsContext, topic: str, ros_type: str, qos: QosProfile, user_data: bytes
) -> RawWriter:
    """The request or reply writer of a client or service."""
    return RawWriter(context, topic, ros_type, qos, with_request_header=True, user_data=user_data)


def _open_reader(
    context: DdsContext,
    topic: str,
    ros_type: str,
    qos: QosProfile,
    user_data: bytes,
    on_sample: Callable[[RawSample], None],
    *,
    writer: RawWriter,
) -> RawReader:
    """The request or reply reader beside ``writer``, which is closed if the reader fails.

    The writer is opened first (a client needs its instance handle before replies can
    arrive), so a failing reader must not leave it behind.
    """
    try:
        return RawReader(
            context,
            topic,
            ros_type,
            qos,
            on_sample=on_sample,
            with_request_header=True,
            user_data=user_data,
        )
    except Exception:
        writer.close()
        raise


class RawServiceServer(CloseOnExit):
    """Serves ``srv_type`` requests on ``name``: ``handler(request_cdr) -> response_cdr``.

    The handler runs on a background thread, one request at a time; both sides are
    serialized messages with the encapsulation header. A handler that raises is
    logged and the request gets no reply, so the client times out.
    """

    def __init__(
        self,
        context: DdsContext,
        name: str,
        srv_type: str,
        handler: Callable[[bytes], bytes | bytearray | memoryview],
        qos: QosProfile = SERVICES_DEFAULT,
    ) -> None:
        types = service_type_names(srv_type)
        topics = service_topic_names(name, context.namespace)
        user_data = f"serviceid={context.next_client_service_id()};".encode()
        self.name = topics.request.removeprefix("rq").removesuffix("Request")
        self._context = context
        self._handler = handler
        self._reply_writer = _open_writer(context, topics.reply, types.response_ros, qos, user_data)
        self._request_reader = _open_reader(
            context,
            topics.request,
            types.request_ros,
            qos,
            user_data,
            self._on_request,
            writer=self._reply_writer,
        )
        context.register(self)

    def _on_request(self, sample: RawSample) -> None:
        header, request_cdr = unwrap_request(sample.cdr)
        response_cdr = self._handler(request_cdr)
        reply = wrap_request(header, response_cdr)
        if self._client_reader_matched(sample.publication_handle):
            self._reply_writer.write(reply)
        else:
            _LOG.warning("%s: requesting client left or its reply reader never matched", self.name)

    def _client_reader_matched(self, request_writer_handle: int) -> bool:
        """Wait until the requesting client's reply reader is matched (rmw's check)."""
        request_writer = self._request_reader.reader.get_matched_publication_data(
            request_writer_handle
        )
        if request_writer is None:
            return False
        client_id = user_data_entries(request_writer.qos).get("clientid")
        if client_id is None:
            return True
        writer = self._reply_writer.writer

        def matched() -> bool:
            readers = [writer.get_matched_subscription_data(h) for h in writer.matched_sub]
            return client_id in _peer_ids(readers, "clientid")

        return wait_for_match(
            self._context.participant,
            [(writer, PUBLICATION_MATCHED)],
            matched,
            CLIENT_READER_WAIT_S,
        )

    def close(self) -> None:
        self._context.unregister(self)
        self._request_reader.close()
        self._reply_writer.close()


class _PendingCall:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.response: bytes | None = None


class RawServiceClient(CloseOnExit):
    """Calls a ``srv_type`` service on ``name`` with serialized requests; thread safe."""

    def __init__(
        self,
        context: DdsContext,
        name: str,
        srv_type: str,
        qos: QosProfile = SERVICES_DEFAULT,
    ) -> None:
        types = service_type_names(srv_type)
        topics = service_topic_names(name, context.namespace)
        user_data = f"clientid={context.next_client_service_id()};".encode()
        self.name = topics.request.removeprefix("rq").removesuffix("Request")
        self._context = context
        self._lock = threading.Lock()
        self._pending: dict[int, _PendingCall] = {}
        self._sequence_numbers = itertools.count(1)
        self._closed = False
        self._request_writer = _open_writer(
            context, topics.request, types.request_ros, qos, user_data
        )
        # cyclonedds-python returns the uint64 handle as a signed integer.
        self._guid = self._request_writer.writer.get_instance_handle() & _UINT64_MASK
        self._reply_reader = _open_reader(
            context,
            topics.reply,
            types.response_ros,
            qos,
            user_data,
            self._on_reply,
            writer=self._request_writer,
        )
        context.register(self)

    def service_is_ready(self) -> bool:
        """Whether a server's request reader and reply writer are both matched."""
        writer = self._request_writer.writer
        reader = self._reply_reader.reader
        request_readers = [writer.get_matched_subscription_data(h) for h in writer.matched_sub]
        reply_writers = [reader.get_matched_publication_data(h) for h in reader.matched_pub]
        service_ids = _peer_ids(request_readers, "serviceid")
        if not service_ids:
            return bool(request_readers) and bool(reply_writers)
        return bool(service_ids & _peer_ids(reply_writers, "serviceid"))

    def wait_for_service(self, timeout_s: float = 5.0) -> bool:
        """Block until ``service_is_ready()``; return whether it became ready in time."""
        return wait_for_match(
            self._context.participant,
            [
                (self._request_writer.writer, PUBLICATION_MATCHED),
                (self._reply_reader.reader, SUBSCRIPTION_MATCHED),
            ],
            self.service_is_ready,
            timeout_s,
        )

    def call(self, request_cdr: bytes | bytearray | memoryview, timeout_s: float = 5.0) -> bytes:
        """Send a serialized request and return the serialized response.

        Waits for the service first, within the same ``timeout_s``.

        Raises:
            TypeError, ValueError: ``request_cdr`` is not a plain-CDR serialized message.
            TimeoutError: No service, or no response, within ``timeout_s``.
            RuntimeError: The client was closed during the call.
        """
        cdr_framing.check_cdr(request_cdr)
        with self._lock:
            if self._closed:
                raise RuntimeError(f"client of {self.name} is closed")
        start = time.monotonic()
        if not self.wait_for_service(timeout_s):
            raise TimeoutError(f"service {self.name} not available within {timeout_s} s")
        pending = _PendingCall()
        with self._lock:
            sequence_number = next(self._sequence_numbers)
            self._pending[sequence_number] = pending
        try:
            self._request_writer.write(
                wrap_request(RequestHeader(self._guid, sequence_number), request_cdr)
            )
            remaining = max(0.0, timeout_s - (time.monotonic() - start))
            if not pending.done.wait(remaining):
                raise TimeoutError(f"no response from service {self.name} within {timeout_s} s")
        finally:
            with self._lock:
                self._pending.pop(sequence_number, None)
        if pending.response is None:
            raise RuntimeError(f"client of {self.name} was closed during the call")
        return pending.response

    def _on_reply(self, sample: RawSample) -> None:
        header, response_cdr = unwrap_request(sample.cdr)
        if header.writer_guid != self._guid:
            return  # a reply to another client of the same service
        with self._lock:
            pending = self._pending.get(header.sequence_number)
        if pending is not None:
            pending.response = response_cdr
            pending.done.set()

    def close(self) -> None:
        """Close the client; calls in progress raise RuntimeError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending_calls = list(self._pending.values())
        self._context.unregister(self)
        self._reply_reader.close()
        self._request_writer.close()
        for pending in pending_calls:
            pending.done.set()
