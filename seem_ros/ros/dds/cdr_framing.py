"""Checks and padding of serialized ROS messages at the DDS boundary.

A serialized ROS 2 message starts with the 4-byte encapsulation header: two
bytes of representation identifier (``00 00`` CDR big endian, ``00 01`` CDR
little endian, i.e. XCDR1 plain CDR) and two bytes of options. rmw_cyclonedds
pads every payload with zeros to a multiple of 4 bytes, and the XTypes 1.3 spec
(7.6.3.1.2) records the number of padding bytes in the two low bits of the last
options byte. We pad the same way and record the count; on receipt we drop
recorded padding and clear the count, so bytes published here come out of a
subscriber byte-identical. Payloads from peers that pad without recording it
(rmw_cyclonedds) keep their trailing zeros, which CDR decoders ignore.
"""

from __future__ import annotations

HEADER_SIZE = 4
_CDR_BIG_ENDIAN = b"\x00\x00"
_CDR_LITTLE_ENDIAN = b"\x00\x01"
_PADDING_BITS = 0x03


def check_cdr(cdr: bytes | bytearray | memoryview) -> bool:
    """Validate the encapsulation header of ``cdr``; return True when it is little endian.

    Raises:
        TypeError: ``cdr`` is not a bytes-like object.
        ValueError: ``cdr`` is shorter than the header or not plain (XCDR1) CDR.
    """
    if not isinstance(cdr, bytes | bytearray | memoryview):
        raise TypeError(f"serialized message must be bytes-like, got {type(cdr).__name__}")
    if len(cdr) < HEADER_SIZE:
        raise ValueError(
            f"serialized message has {len(cdr)} bytes; it needs at least the "
            f"{HEADER_SIZE}-byte CDR encapsulation header"
        )
    kind = bytes(cdr[:2])
    if kind not in (_CDR_BIG_ENDIAN, _CDR_LITTLE_ENDIAN):
        raise ValueError(
            f"serialized message has encapsulation {kind.hex()}; ROS 2 peers expect plain "
            "CDR (0000 big endian or 0001 little endian)"
        )
    return kind == _CDR_LITTLE_ENDIAN


def pad_for_wire(cdr: bytes | bytearray | memoryview) -> bytes | bytearray | memoryview:
    """Return ``cdr`` padded with zeros to a multiple of 4 bytes, padding count recorded."""
    padding = -len(cdr) % 4
    if padding == 0:
        return cdr
    padded = bytearray(len(cdr) + padding)
    padded[: len(cdr)] = cdr
    padded[3] = (padded[3] & ~_PADDING_BITS) | padding
    return padded


def strip_wire_padding(payload: bytes) -> bytes:
    """Undo :func:`pad_for_wire`: drop recorded padding bytes and clear the count."""
    if len(payload) < HEADER_SIZE:
        return payload
    padding = payload[3] & _PADDING_BITS
    if padding == 0 or len(payload) - HEADER_SIZE < padding:
        return payload
    options = bytes((payload[2], payload[3] & ~_PADDING_BITS))
    return payload[:2] + options + payload[HEADER_SIZE:-padding]
