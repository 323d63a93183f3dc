"""A small TF buffer for nodes without tf2: ``/tf`` and ``/tf_static`` in, 4x4 lookups out.

Only what projecting a clicked point needs: frames form a tree (each child has one parent),
dynamic transforms are kept for ``cache_s`` seconds and interpolated in time (linear
translation, spherical rotation), static ones hold forever. A lookup at stamp 0 takes each
edge's newest transform; a stamp slightly outside what an edge has (up to
``extrapolation_s``, e.g. a click stamped "now" while TF lags a little) takes the nearest.
"""

from __future__ import annotations

import bisect
import threading
from typing import Any, NamedTuple

import numpy as np

from seem_ros.ros.messages import ns_from_stamp
from seem_ros.ros.projection import strip_frame, transform_matrix

MAX_TREE_DEPTH = 64


class _Sample(NamedTuple):
    stamp_ns: int
    translation: np.ndarray  # (3,)
    rotation: np.ndarray  # (4,) unit quaternion x, y, z, w


def _slerp(q0: np.ndarray, q1: np.ndarray, t: float) -> np.ndarray:
    dot = float(np.dot(q0, q1))
    if dot < 0.0:  # the short way round
        q1, dot = -q1, -dot
    if dot > 0.9995:
        q = q0 + t * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(dot)
    return (np.sin((1 - t) * theta) * q0 + np.sin(t * theta) * q1) / np.sin(theta)


def _interpolate(samples: list[_Sample], stamp_ns: int, slack_ns: int) -> _Sample | None:
    if stamp_ns == 0:
        return samples[-1]
    stamps = [sample.stamp_ns for sample in samples]
    index = bisect.bisect_left(stamps, stamp_ns)
    if index < len(samples) and stamps[index] == stamp_ns:
        return samples[index]
    if index == 0:
        return samples[0] if stamps[0] - stamp_ns <= slack_ns else None
    if index == len(samples):
        return samples[-1] if stamp_ns - stamps[-1] <= slack_ns else None
    before, after = samples[index - 1], samples[index]
    t = (stamp_ns - before.stamp_ns) / (after.stamp_ns - before.stamp_ns)
    translation = before.translation + t * (after.translation - before.translation)
    return _Sample(stamp_ns, translation, _slerp(before.rotation, after.rotation, t))


class TfBuffer:
    """Thread-safe store of ``tf2_msgs/TFMessage`` transforms with tree lookups.

    Args:
        cache_s: How long dynamic transforms are kept (tf2's default is 10 s).
        extrapolation_s: How far outside an edge's stored time range a lookup may reach.
    """

    def __init__(self, *, cache_s: float = 10.0, extrapolation_s: float = 0.5) -> None:
        self._cache_ns = int(cache_s * 1e9)
        self._slack_ns = int(extrapolation_s * 1e9)
        self._lock = threading.Lock()
        self._parent: dict[str, str] = {}
        self._static: dict[str, _Sample] = {}
        self._dynamic: dict[str, list[_Sample]] = {}

    def add_message(self, tf_message: Any, *, static: bool) -> int:
        """Store every transform of a TFMessage; returns how many were stored.

        Transforms with empty frame ids, a frame that is its own parent, or a non-finite or
        zero rotation are skipped.
        """
        stored = 0
        for stamped in tf_message.transforms:
            child = strip_frame(str(stamped.child_frame_id))
            parent = strip_frame(str(stamped.header.frame_id))
            translation = np.array(
                [
                    stamped.transform.translation.x,
                    stamped.transform.translation.y,
                    stamped.transform.translation.z,
                ],
                dtype=np.float64,
            )
            rotation = np.array(
                [
                    stamped.transform.rotation.x,
                    stamped.transform.rotation.y,
                    stamped.transform.rotation.z,
                    stamped.transform.rotation.w,
                ],
                dtype=np.float64,
            )
            norm = float(np.linalg.norm(rotation))
            valid = np.all(np.isfinite(translation)) and np.isfinite(norm) and norm > 1e-12
            if not child or not parent or child == parent or not valid:
                continue
            sample = _Sample(ns_from_stamp(stamped.header.stamp), translation, rotation / norm)
            with self._lock:
                self._store(child, parent, sample, static)
            stored += 1
        return stored

    def _store(self, child: str, parent: str, sample: _Sample, static: bool) -> None:
        if self._parent.get(child) != parent:
            self._static.pop(child, None)
            self._dynamic.pop(child, None)
            self._parent[child] = parent
        if static:
            self._static[child] = sample
            return
        samples = self._dynamic.setdefault(child, [])
        index = bisect.bisect_right([s.stamp_ns for s in samples], sample.stamp_ns)
        if index > 0 and samples[index - 1].stamp_ns == sample.stamp_ns:
            samples[index - 1] = sample
        else:
            samples.insert(index, sample)
        oldest_kept = samples[-1].stamp_ns - self._cache_ns
        while samples and samples[0].stamp_ns < oldest_kept:
            samples.pop(0)

    def _edge(self, child: str, stamp_ns: int) -> np.ndarray | None:
        """parent <- child transform at ``stamp_ns``."""
        if child in self._static:
            sample = self._static[child]
        else:
            samples = self._dynamic.get(child)
            sample = _interpolate(samples, stamp_ns, self._slack_ns) if samples else None
        if sample is None:
            return None
        return transform_matrix(tuple(sample.translation), tuple(sample.rotation))

    def _chain_to_root(self, frame: str) -> list[str]:
        chain = [frame]
        while chain[-1] in self._parent and len(chain) <= MAX_TREE_DEPTH:
            parent = self._parent[chain[-1]]
            if parent in chain:  # a loop in the published tree
                break
            chain.append(parent)
        return chain

    def _to_ancestor(self, chain: list[str], ancestor: str, stamp_ns: int) -> np.ndarray | None:
        """ancestor <- chain[0] transform along ``chain``."""
        matrix = np.eye(4)
        for frame in chain[: chain.index(ancestor)]:
            edge = self._edge(frame, stamp_ns)
            if edge is None:
                return None
            matrix = edge @ matrix
        return matrix

    def lookup(self, target_frame: str, source_frame: str, stamp_ns: int) -> np.ndarray | None:
        """4x4 mapping points in ``source_frame`` into ``target_frame``; None if unknown.

        Matches :data:`seem_ros.ros.projection.TransformLookup`.
        """
        target, source = strip_frame(target_frame), strip_frame(source_frame)
        if target == source:
            return np.eye(4)
        with self._lock:
            source_chain = self._chain_to_root(source)
            target_chain = self._chain_to_root(target)
            common = next((frame for frame in source_chain if frame in target_chain), None)
            if common is None:
                return None
            ancestor_from_source = self._to_ancestor(source_chain, common, stamp_ns)
            ancestor_from_target = self._to_ancestor(target_chain, common, stamp_ns)
        if ancestor_from_source is None or ancestor_from_target is None:
            return None
        return np.linalg.inv(ancestor_from_target) @ ancestor_from_source

    @property
    def frames(self) -> set[str]:
        with self._lock:
            return set(self._parent) | set(self._parent.values())
