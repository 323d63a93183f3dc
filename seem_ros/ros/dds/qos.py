"""ROS 2 QoS profiles and their Cyclone DDS form.

The profiles mirror rmw's: ``SENSOR_DATA`` is ``rmw_qos_profile_sensor_data``
(best effort, keep last 5, volatile), ``DEFAULT`` is ``rmw_qos_profile_default``
and ``SERVICES_DEFAULT`` is ``rmw_qos_profile_services_default`` (both reliable,
keep last 10, volatile). Every reader and writer is restricted to the XCDR1 data
representation, which is what ROS 2 peers on rmw_cyclonedds and Fast DDS offer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum

from cyclonedds.core import Policy, Qos
from cyclonedds.util import duration

# How long a reliable write may block when the writer's history is full of unacked data.
RELIABLE_MAX_BLOCKING_S = 1.0


class Reliability(Enum):
    RELIABLE = "reliable"
    BEST_EFFORT = "best_effort"


class Durability(Enum):
    VOLATILE = "volatile"
    TRANSIENT_LOCAL = "transient_local"


@dataclass(frozen=True)
class QosProfile:
    """The subset of a ROS 2 QoS profile that ROS nodes set in practice."""

    reliability: Reliability = Reliability.RELIABLE
    depth: int = 10
    durability: Durability = Durability.VOLATILE

    def __post_init__(self) -> None:
        if not isinstance(self.depth, int) or self.depth < 1:
            raise ValueError(f"QoS history depth must be an integer >= 1, got {self.depth!r}")

    def with_reliability(self, reliability: str | Reliability) -> QosProfile:
        """Return a copy with the reliability a ``reliability`` parameter asks for.

        Raises:
            ValueError: ``reliability`` is neither "reliable" nor "best_effort".
        """
        if isinstance(reliability, str):
            try:
                reliability = Reliability(reliability)
            except ValueError:
                raise ValueError(
                    f"reliability must be 'reliable' or 'best_effort', got {reliability!r}"
                ) from None
        return dataclasses.replace(self, reliability=reliability)

    def latched(self) -> QosProfile:
        """Return a copy with transient-local durability: late joiners get the last samples."""
        return dataclasses.replace(self, durability=Durability.TRANSIENT_LOCAL)


SENSOR_DATA = QosProfile(Reliability.BEST_EFFORT, 5, Durability.VOLATILE)
DEFAULT = QosProfile(Reliability.RELIABLE, 10, Durability.VOLATILE)
SERVICES_DEFAULT = QosProfile(Reliability.RELIABLE, 10, Durability.VOLATILE)


def to_cyclone_qos(profile: QosProfile, user_data: bytes | None = None) -> Qos:
    """Cyclone DDS reader/writer QoS for ``profile``, optionally with USER_DATA."""
    if profile.reliability is Reliability.RELIABLE:
        reliability = Policy.Reliability.Reliable(duration(seconds=RELIABLE_MAX_BLOCKING_S))
    else:
        reliability = Policy.Reliability.BestEffort
    if profile.durability is Durability.TRANSIENT_LOCAL:
        durability = Policy.Durability.TransientLocal
    else:
        durability = Policy.Durability.Volatile
    policies = [
        reliability,
        durability,
        Policy.History.KeepLast(profile.depth),
        Policy.DataRepresentation(use_cdrv0_representation=True),
    ]
    if user_data is not None:
        policies.append(Policy.Userdata(data=user_data))
    return Qos(*policies)
