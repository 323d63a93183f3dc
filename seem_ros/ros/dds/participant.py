"""The DDS participant every publisher, subscriber and service of a node lives in.

``DdsContext`` picks the domain the way ROS 2 does (argument, else the
``ROS_DOMAIN_ID`` environment variable, else 0) and can keep discovery and data
on the loopback interface (argument, else ``ROS_LOCALHOST_ONLY=1``): interface
127.0.0.1, multicast off, unicast discovery of participant indices on
127.0.0.1. The configuration is handed to Cyclone when the domain is created,
before the participant exists. ``CYCLONEDDS_URI``, when set, is appended so the
user's settings still win, as rmw_cyclonedds does.
"""

from __future__ import annotations

import itertools
import os
import threading
from typing import TYPE_CHECKING, Protocol, TypeVar

from cyclonedds.core import Entity
from cyclonedds.domain import Domain, DomainParticipant

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

MAX_DOMAIN_ID = 232
# Unicast discovery probes participant indices 0..N on 127.0.0.1.
MAX_LOCAL_PARTICIPANTS = 32

LOCALHOST_ONLY_CONFIG = (
    '<CycloneDDS><Domain id="any">'
    '<General><Interfaces><NetworkInterface address="127.0.0.1"/></Interfaces>'
    "<AllowMulticast>false</AllowMulticast></General>"
    "<Discovery><ParticipantIndex>auto</ParticipantIndex>"
    f"<MaxAutoParticipantIndex>{MAX_LOCAL_PARTICIPANTS}</MaxAutoParticipantIndex>"
    '<Peers><Peer address="127.0.0.1"/></Peers></Discovery>'
    "</Domain></CycloneDDS>"
)


class Closeable(Protocol):
    def close(self) -> None: ...


_Self = TypeVar("_Self", bound="CloseOnExit")


class CloseOnExit:
    """Context-manager protocol shared by the context and its endpoints: ``with`` closes."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def delete_entity(entity: Entity) -> None:
    """Delete a Cyclone entity now instead of whenever Python collects it.

    cyclonedds-python ties an entity's lifetime to its Python object; its
    finalizer deletes the DDS entity once and unregisters it, so calling it
    explicitly gives deterministic shutdown and a later collection is a no-op.
    """
    entity.__del__()


def resolve_domain_id(domain_id: int | None) -> int:
    """The ROS domain: ``domain_id``, else ``$ROS_DOMAIN_ID``, else 0.

    Raises:
        ValueError: The id is not an integer in 0..232.
    """
    if domain_id is None:
        text = os.environ.get("ROS_DOMAIN_ID", "").strip()
        if not text:
            return 0
        try:
            domain_id = int(text)
        except ValueError:
            raise ValueError(f"ROS_DOMAIN_ID={text!r} is not an integer") from None
    if isinstance(domain_id, bool) or not isinstance(domain_id, int):
        raise ValueError(f"ROS domain id must be an integer, got {domain_id!r}")
    if not 0 <= domain_id <= MAX_DOMAIN_ID:
        raise ValueError(f"ROS domain id must be in 0..{MAX_DOMAIN_ID}, got {domain_id}")
    return domain_id


def resolve_localhost_only(localhost_only: bool | None) -> bool:
    """``localhost_only``, else whether ``$ROS_LOCALHOST_ONLY`` is "1"."""
    if localhost_only is None:
        return os.environ.get("ROS_LOCALHOST_ONLY", "").strip() == "1"
    return localhost_only


def cyclone_config(localhost_only: bool) -> str | None:
    """Configuration string for the domain; None means Cyclone's defaults and $CYCLONEDDS_URI."""
    user_config = os.environ.get("CYCLONEDDS_URI", "").strip()
    if not localhost_only:
        return user_config or None
    return f"{LOCALHOST_ONLY_CONFIG},{user_config}" if user_config else LOCALHOST_ONLY_CONFIG


class _DomainRegistry:
    """Cyclone allows one domain instance per id and process; contexts share it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._domains: dict[int, tuple[Domain, str | None, int]] = {}

    def acquire(self, domain_id: int, config: str | None) -> Domain:
        with self._lock:
            if domain_id in self._domains:
                domain, existing_config, users = self._domains[domain_id]
                if existing_config != config:
                    raise ValueError(
                        f"DDS domain {domain_id} is already open in this process with a "
                        "different configuration (localhost_only or CYCLONEDDS_URI differ)"
                    )
                self._domains[domain_id] = (domain, config, users + 1)
                return domain
            domain = Domain(domain_id, config)
            self._domains[domain_id] = (domain, config, 1)
            return domain

    def release(self, domain_id: int) -> None:
        with self._lock:
            domain, config, users = self._domains[domain_id]
            if users > 1:
                self._domains[domain_id] = (domain, config, users - 1)
                return
            del self._domains[domain_id]
            delete_entity(domain)


_DOMAINS = _DomainRegistry()


class DdsContext(CloseOnExit):
    """One DDS participant plus the ROS conventions its endpoints share.

    Args:
        domain_id: ROS domain id; default from ``ROS_DOMAIN_ID``, else 0.
        localhost_only: Keep all traffic on 127.0.0.1; default from ``ROS_LOCALHOST_ONLY``.
        namespace: Namespace relative topic and service names resolve in.
        typestore: rosbags typestore with the definitions of every type used;
            default is the project's shared store (``seem_ros.ros.messages``).

    Endpoints register themselves; ``close()`` closes them, then the participant.
    """

    def __init__(
        self,
        domain_id: int | None = None,
        *,
        localhost_only: bool | None = None,
        namespace: str = "/",
        typestore: Typestore | None = None,
    ) -> None:
        self.domain_id = resolve_domain_id(domain_id)
        self.localhost_only = resolve_localhost_only(localhost_only)
        self.namespace = namespace
        if typestore is None:
            from seem_ros.ros.messages import TYPESTORE

            typestore = TYPESTORE
        self.typestore = typestore
        self._lock = threading.Lock()
        self._endpoints: list[Closeable] = []
        self._client_service_ids = itertools.count(1)
        self._closed = False
        self._domain = _DOMAINS.acquire(self.domain_id, cyclone_config(self.localhost_only))
        try:
            self.participant = DomainParticipant(self.domain_id)
        except Exception:
            _DOMAINS.release(self.domain_id)
            raise

    @property
    def closed(self) -> bool:
        return self._closed

    def register(self, endpoint: Closeable) -> None:
        """Track ``endpoint`` so that ``close()`` closes it.

        Raises:
            RuntimeError: The context is closed.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("DdsContext is closed")
            self._endpoints.append(endpoint)

    def unregister(self, endpoint: Closeable) -> None:
        with self._lock:
            if endpoint in self._endpoints:
                self._endpoints.remove(endpoint)

    def next_client_service_id(self) -> str:
        """A process-unique id for a client/service, formatted as rmw_cyclonedds does.

        rmw_cyclonedds puts ``clientid=<id>;`` / ``serviceid=<id>;`` in the USER_DATA of a
        client's or service's reader and writer so peers can pair them: the
        participant GUID prefix (12 bytes) followed by a big-endian counter,
        printed as hex bytes joined by dots.
        """
        prefix = self.participant.guid.bytes[:12]
        counter = next(self._client_service_ids).to_bytes(4, "big")
        raw = prefix + counter
        return f"{raw[0]:2x}" + "".join(f".{byte:x}" for byte in raw[1:])

    def close(self) -> None:
        """Close every endpoint, then the participant. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            endpoints, self._endpoints = self._endpoints, []
        for endpoint in reversed(endpoints):
            endpoint.close()
        delete_entity(self.participant)
        _DOMAINS.release(self.domain_id)
