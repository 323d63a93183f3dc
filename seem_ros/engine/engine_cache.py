"""A cache of built TensorRT engines that never loads an engine built for something else.

A serialized TensorRT engine only works with the exact graph, GPU model and TensorRT version
it was built with (and embodies the precision and optimisation profile chosen at build time).
Each cached ``<graph>.plan`` has a ``<graph>.plan.json`` beside it recording that
:class:`EngineKey`, the plan's sha256 and what the build produced (its layers' precisions).
The key names the TensorRT major version on its own as well: 10.x and 11.x build FP16 engines
from different graphs, so an engine never crosses a major version even where the full version
string would be compared loosely. A lookup returns the plan only when every field
matches; otherwise it says why (stale: the graph or build options changed; foreign: another
GPU or TensorRT version; corrupt: the bytes changed) and the caller rebuilds, overwriting it.
One plan per graph name per folder keeps the cache bounded.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

PLAN_SUFFIX = ".plan"
KEY_SUFFIX = ".plan.json"

_FIELD_MEANING = {
    "onnx_sha256": "the ONNX graph changed (stale engine)",
    "gpu": "built for another GPU (foreign engine)",
    "tensorrt_version": "built with another TensorRT version (foreign engine)",
    "tensorrt_major": "built with another TensorRT major version (foreign engine)",
    "precision": "built for another precision",
    "build_options": "built with other workspace / optimisation-profile options",
}


@dataclass(frozen=True)
class EngineKey:
    """Everything a built engine depends on."""

    onnx_sha256: str
    gpu: str  # device name and compute capability, e.g. "NVIDIA H100 80GB HBM3 (sm_90)"
    tensorrt_version: str
    tensorrt_major: str  # "10" or "11": they build FP16 differently (builder flag / FP16 graph)
    precision: str
    build_options: str  # canonical text of workspace + optimisation profile settings


@dataclass(frozen=True)
class CacheLookup:
    """``plan`` is the cached file when usable; otherwise ``reason`` says why it is not."""

    plan: Path | None
    reason: str


def mismatch_reason(stored: dict[str, str], key: EngineKey) -> str | None:
    """Why an engine recorded as ``stored`` cannot serve ``key`` (None when it can)."""
    for item in fields(EngineKey):
        have, want = stored.get(item.name), getattr(key, item.name)
        if have != want:
            return f"{_FIELD_MEANING[item.name]}: cached {have!r}, need {want!r}"
    return None


class EngineCache:
    """Serialized engines in ``root``, one per graph name."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def plan_path(self, graph: str) -> Path:
        if not graph or "/" in graph or graph.startswith("."):
            raise ValueError(f"invalid graph name for the engine cache: {graph!r}")
        return self.root / f"{graph}{PLAN_SUFFIX}"

    def key_path(self, graph: str) -> Path:
        return self.root / f"{graph}{KEY_SUFFIX}"

    def lookup(self, graph: str, key: EngineKey) -> CacheLookup:
        plan, record = self.plan_path(graph), self.key_path(graph)
        if not plan.is_file():
            return CacheLookup(None, f"no cached engine at {plan}")
        if not record.is_file():
            return CacheLookup(None, f"{plan} has no {record.name}: origin unknown")
        try:
            stored = json.loads(record.read_text())
        except ValueError as error:
            return CacheLookup(None, f"{record} is unreadable: {error}")
        reason = mismatch_reason(stored.get("key", {}), key)
        if reason:
            return CacheLookup(None, reason)
        if stored.get("plan_sha256") != _sha256(plan.read_bytes()):
            return CacheLookup(
                None, f"{plan} does not match its recorded checksum (corrupt engine)"
            )
        return CacheLookup(plan, "cached engine matches")

    def store(
        self, graph: str, key: EngineKey, plan_bytes: bytes, *, built: dict | None = None
    ) -> Path:
        """Write the plan, then its key record, each atomically (a crash leaves no false match).

        ``built``: what the build produced (the layers' precisions), kept in the record for
        people reading the cache; lookups do not depend on it."""
        self.root.mkdir(parents=True, exist_ok=True)
        plan, record = self.plan_path(graph), self.key_path(graph)
        record.unlink(missing_ok=True)
        _atomic_write(plan, plan_bytes)
        record_data = {"key": asdict(key), "plan_sha256": _sha256(plan_bytes), "built": built}
        text = json.dumps(record_data, indent=2)
        _atomic_write(record, text.encode())
        return plan


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    partial.replace(path)
