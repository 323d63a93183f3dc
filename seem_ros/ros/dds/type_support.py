"""Cyclone DDS topic types for ROS messages, built from their rosbags definitions.

Why a typed struct for a byte pipe: cyclonedds-python creates a topic only from
an ``IdlStruct`` whose XTypes type information it can derive, and its C layer
checks every written and received payload against that type (a cheap bounds
walk, no Python involved). The struct is never used to (de)serialize here: the
publisher hands pre-serialized CDR straight to the C layer and the subscriber
takes CDR straight back. A struct that mirrors the ROS definition also gives the
topic the type information that rmw_cyclonedds (which builds the same type from
the ROS introspection data) and plain cyclonedds readers compare with ours, so
they match. The mapping follows rmw_cyclonedds: final structs, ``byte`` and
``char`` as uint8, nested messages as ``pkg::msg::dds_::Name_`` structs.

Service payloads carry rmw_cyclonedds' request header (writer GUID and sequence
number) in front of the message fields, so service topic types get those two
fields first.
"""

from __future__ import annotations

import threading
from typing import Any

from cyclonedds.idl import IdlStruct, make_idl_struct
from cyclonedds.idl import types as idl
from rosbags.typesys.base import Nodetype
from rosbags.typesys.store import Typestore

from seem_ros.ros.dds.names import dds_type_name

# rmw_cyclonedds' cdds_request_header_t, in wire order.
REQUEST_HEADER_FIELDS: dict[str, Any] = {"writer_guid": idl.uint64, "sequence_number": idl.int64}
# rosidl gives an empty message this single member; rosbags serializes it too.
_EMPTY_STRUCT_FIELD = {"structure_needs_at_least_one_member": idl.uint8}

_PRIMITIVES: dict[str, Any] = {
    "bool": bool,
    "byte": idl.uint8,
    "char": idl.uint8,
    "int8": idl.int8,
    "uint8": idl.uint8,
    "int16": idl.int16,
    "uint16": idl.uint16,
    "int32": idl.int32,
    "uint32": idl.uint32,
    "int64": idl.int64,
    "uint64": idl.uint64,
    "float32": idl.float32,
    "float64": idl.float64,
}


class TypeSupportError(ValueError):
    """A ROS type cannot be turned into a Cyclone DDS topic type."""


class _TopicTypeCache:
    """Process-wide cache: one struct class per (typestore, ROS type, header flag).

    Building the XTypes information costs tens of milliseconds, and reusing one
    class keeps every topic of a type in this process on the same sertype.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Keyed by id(typestore); the store is kept in the value so the id stays unique.
        self._structs: dict[tuple[int, str, bool], tuple[Typestore, type[IdlStruct]]] = {}

    def get(
        self, typestore: Typestore, ros_type: str, with_request_header: bool
    ) -> type[IdlStruct]:
        key = (id(typestore), ros_type, with_request_header)
        with self._lock:
            if key not in self._structs:
                struct = _build_topic_struct(typestore, ros_type, with_request_header)
                self._structs[key] = (typestore, struct)
            return self._structs[key][1]


_CACHE = _TopicTypeCache()


def topic_struct(
    typestore: Typestore, ros_type: str, *, with_request_header: bool = False
) -> type[IdlStruct]:
    """Return the ``IdlStruct`` class that declares a DDS topic of ``ros_type``.

    Raises:
        TypeSupportError: ``ros_type`` is not in ``typestore`` or uses a type
            cyclonedds-python cannot express (wstring, wchar, float128).
    """
    return _CACHE.get(typestore, ros_type, with_request_header)


def _build_topic_struct(
    typestore: Typestore, ros_type: str, with_request_header: bool
) -> type[IdlStruct]:
    nested: dict[str, type[IdlStruct]] = {}
    fields = _message_fields(typestore, ros_type, nested)
    if with_request_header:
        clashes = REQUEST_HEADER_FIELDS.keys() & fields.keys()
        if clashes:
            raise TypeSupportError(
                f"{ros_type} has fields {sorted(clashes)} that clash with the service "
                "request header"
            )
        fields = {**REQUEST_HEADER_FIELDS, **fields}
    struct = make_idl_struct(
        ros_type.rsplit("/", 1)[1], _idl_typename(ros_type), fields, dataclassify=False
    )
    struct.__idl__.populate()
    struct.__idl__.fill_type_data()
    return struct


def _idl_typename(ros_type: str) -> str:
    # cyclonedds-python spells scopes with dots and turns them into "::" itself.
    return dds_type_name(ros_type).replace("::", ".")


def _message_fields(
    typestore: Typestore, ros_type: str, nested: dict[str, type[IdlStruct]]
) -> dict[str, Any]:
    if ros_type not in typestore.fielddefs:
        raise TypeSupportError(
            f"ROS type {ros_type!r} is not in the typestore; register its definition first"
        )
    _constants, fielddefs = typestore.fielddefs[ros_type]
    if not fielddefs:
        return dict(_EMPTY_STRUCT_FIELD)
    return {name: _field_type(typestore, ros_type, name, desc, nested) for name, desc in fielddefs}


def _field_type(
    typestore: Typestore,
    owner: str,
    field: str,
    desc: tuple[Nodetype, Any],
    nested: dict[str, type[IdlStruct]],
) -> Any:
    nodetype, detail = desc
    if nodetype == Nodetype.BASE:
        base_name, bound = detail
        if base_name == "string":
            return idl.bounded_str[bound] if bound else str
        if base_name not in _PRIMITIVES:
            raise TypeSupportError(
                f"{owner}.{field}: ROS type {base_name!r} is not supported by cyclonedds-python"
            )
        return _PRIMITIVES[base_name]
    if nodetype == Nodetype.NAME:
        if detail not in nested:
            nested[detail] = make_idl_struct(
                detail.rsplit("/", 1)[1],
                _idl_typename(detail),
                _message_fields(typestore, detail, nested),
                dataclassify=False,
            )
        return nested[detail]
    element_type = _field_type(typestore, owner, field, detail[0], nested)
    size = detail[1]
    if nodetype == Nodetype.ARRAY:
        return idl.array[element_type, size]
    return idl.sequence[element_type, size] if size else idl.sequence[element_type]
