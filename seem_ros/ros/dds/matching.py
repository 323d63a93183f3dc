"""Waiting for endpoint matches without polling, and reading peers' USER_DATA."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from cyclonedds.core import DDSStatus, Entity, Policy, Qos, WaitSet
from cyclonedds.domain import DomainParticipant

from seem_ros.ros.dds.participant import delete_entity

PUBLICATION_MATCHED = DDSStatus.PublicationMatched
SUBSCRIPTION_MATCHED = DDSStatus.SubscriptionMatched


def wait_for_match(
    participant: DomainParticipant,
    watched: Sequence[tuple[Entity, int]],
    predicate: Callable[[], bool],
    timeout_s: float,
) -> bool:
    """Block until ``predicate()`` holds, re-checking whenever a watched status changes.

    Args:
        participant: Participant that owns the temporary waitset.
        watched: (reader or writer, status mask) pairs whose changes may flip the predicate.
        predicate: Condition to wait for; cheap, called on each wake-up.
        timeout_s: Give up after this many seconds.

    Returns:
        Whether the predicate held before the timeout.
    """
    if predicate():
        return True
    deadline = time.monotonic() + timeout_s
    waitset = WaitSet(participant)
    try:
        for entity, mask in watched:
            entity.set_status_mask(mask)
            waitset.attach(entity)
        while True:
            for entity, mask in watched:
                entity.take_status(mask)  # re-arm before checking, so no change is missed
            if predicate():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            waitset.wait(int(remaining * 1e9))
    finally:
        delete_entity(waitset)


def user_data_entries(qos: Qos | None) -> dict[str, str]:
    """Parse the ``key=value;`` entries ROS 2 rmw layers put in an endpoint's USER_DATA."""
    if qos is None or Policy.Userdata not in qos:
        return {}
    text = qos[Policy.Userdata].data.decode("utf-8", errors="replace")
    entries = {}
    for item in text.split(";"):
        key, sep, value = item.partition("=")
        if sep:
            entries[key.strip()] = value
    return entries
