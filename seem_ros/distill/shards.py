"""Label shards: the teacher pass's output folder, written incrementally, read by ``distill``.

A shard folder holds ``shard-00000.npz``, ``shard-00001.npz``, ... (``np.savez_compressed``;
frame ``i`` of a shard under the prefix ``f{i}/``, see :meth:`FrameLabel.to_arrays`) and
``manifest.json``, which makes the folder self-describing::

    {"format": "seem_ros.shards/1", "seem_ros": "0.1.0", "created": ..., "updated": ...,
     "teacher": {"path", "name", "sha256", "config", "family", "trained"},
     "settings": LabelSettings.to_dict(),        # the vocabulary ("classes"), phrases, ...
     "selection": {"stride", "dedup_threshold", "chunk_frames"},
     "counts": {"frames", "shards", "bad_frames", "duplicates_skipped", "stride_skipped",
                "unreadable_chunks"},
     "sources": [{"id", "kind", "path", "topic"?, "frames"}],
     "chunks_done": [chunk id, ...],
     "shards": [{"file", "frames", "sha256", "keys": [frame key, ...]}]}

Only what the manifest lists exists: a shard is written to a temporary file and renamed, then
the manifest is rewritten the same way, so a run killed at any moment leaves a consistent
folder, and the next run continues after the last listed shard (an unlisted shard file is
overwritten). The skip counts of a chunk are added when the whole chunk is in listed shards;
a resumed run reads unfinished chunks again and labels only the frames not yet listed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .record import FrameLabel

FORMAT = "seem_ros.shards/1"
MANIFEST = "manifest.json"
COUNT_NAMES = (
    "frames",
    "shards",
    "bad_frames",
    "duplicates_skipped",
    "stride_skipped",
    "unreadable_chunks",
)
# what must match for a run to continue an existing folder
RESUME_CHECKS = (("teacher", "sha256"), ("settings",), ("selection",))


class ShardError(ValueError):
    """A shard folder is missing, incomplete, or not what was asked for."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_manifest(directory: Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ShardError(f"{directory} is not a shard folder: no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ShardError(f"cannot read {path}: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ShardError(f"{path} is not a {FORMAT} manifest")
    return manifest


def _lookup(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        data = data.get(part, {}) if isinstance(data, Mapping) else {}
    return data


def pack_arrays(arrays: Mapping[str, np.ndarray]) -> bytes:
    """A frame's flat arrays as (uncompressed) ``.npz`` bytes: how labels travel from a Ray
    actor to the writer."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def unpack_arrays(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


class ShardWriter:
    """Writes frames into shards of ``shard_size`` and keeps ``manifest.json`` current.

    ``manifest_base`` holds this run's ``teacher``, ``settings``, ``selection`` and
    ``sources``. An existing folder is continued when its teacher sha256, settings and
    selection match (:attr:`done_keys` are then the frames it holds); otherwise
    :class:`ShardError`, unless ``overwrite``, which deletes its shards and starts afresh.
    """

    def __init__(
        self,
        out_dir: str | Path,
        manifest_base: Mapping[str, Any],
        *,
        shard_size: int = 64,
        overwrite: bool = False,
    ) -> None:
        if shard_size < 1:
            raise ShardError(f"shard size must be at least 1, got {shard_size}")
        self.directory = Path(out_dir)
        self.shard_size = shard_size
        if self.directory.exists() and not self.directory.is_dir():
            raise ShardError(f"{self.directory} is a file, not a folder")
        existing = self._existing(overwrite)
        if existing is None:
            self.manifest = self._fresh(manifest_base)
        else:
            self.manifest = existing
            self._check_resumable(manifest_base)
            self.manifest["teacher"] = dict(manifest_base["teacher"])  # path may have moved
            known = {s["id"] for s in self.manifest["sources"]}
            self.manifest["sources"] += [
                s for s in manifest_base.get("sources", []) if s["id"] not in known
            ]
        self.done_keys: set[str] = {k for s in self.manifest["shards"] for k in s["keys"]}
        self.chunks_done: set[str] = set(self.manifest["chunks_done"])
        self._buffer: list[tuple[str, Mapping[str, np.ndarray]]] = []
        self._chunk_stats: dict[str, dict[str, int]] = {}
        self._finished_chunks: list[str] = []
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob("*.tmp"):  # a killed run's half-written file
            stale.unlink()
        self._write_manifest()

    # ------------------------------------------------------------------ setup
    def _existing(self, overwrite: bool) -> dict[str, Any] | None:
        if not (self.directory / MANIFEST).exists():
            if self.directory.is_dir() and any(self.directory.iterdir()):
                raise ShardError(
                    f"{self.directory} holds files but no {MANIFEST}: not a shard folder; "
                    "name a new or empty folder"
                )
            return None
        manifest = read_manifest(self.directory)
        if not overwrite:
            return manifest
        for shard in self.directory.glob("shard-*.npz"):
            shard.unlink()
        (self.directory / MANIFEST).unlink()
        return None

    @staticmethod
    def _fresh(base: Mapping[str, Any]) -> dict[str, Any]:
        from .. import __version__

        now = _now()
        return {
            "format": FORMAT,
            "seem_ros": __version__,
            "created": now,
            "updated": now,
            "teacher": dict(base["teacher"]),
            "settings": dict(base["settings"]),
            "selection": dict(base.get("selection", {})),
            "counts": dict.fromkeys(COUNT_NAMES, 0),
            "sources": list(base.get("sources", [])),
            "chunks_done": [],
            "shards": [],
        }

    def _check_resumable(self, base: Mapping[str, Any]) -> None:
        differ = [
            ".".join(path)
            for path in RESUME_CHECKS
            if json.loads(json.dumps(_lookup(base, path))) != _lookup(self.manifest, path)
        ]
        if differ:
            raise ShardError(
                f"{self.directory} holds labels made with another {', '.join(differ)} "
                f"(teacher {self.manifest['teacher'].get('path')}); choose a new --out, or "
                "--overwrite to delete them"
            )

    # ------------------------------------------------------------------ writing
    @property
    def frames(self) -> int:
        """Frames written or buffered."""
        return self.manifest["counts"]["frames"] + len(self._buffer)

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.manifest["counts"])

    def add(self, key: str, arrays: Mapping[str, np.ndarray]) -> None:
        """Add one frame (its unprefixed arrays, :meth:`FrameLabel.to_arrays` with ``""``)."""
        if key in self.done_keys:
            raise ShardError(f"frame {key} is already in {self.directory}")
        self.done_keys.add(key)
        self._buffer.append((key, arrays))
        if len(self._buffer) >= self.shard_size:
            self.flush()

    def add_label(self, label: FrameLabel) -> None:
        self.add(label.key, label.to_arrays(""))

    def count(self, chunk: str, name: str, value: int = 1) -> None:
        """Add to a chunk's skip counts, kept until the chunk is finished."""
        if name not in COUNT_NAMES:
            raise ShardError(f"unknown count {name!r}")
        stats = self._chunk_stats.setdefault(chunk, {})
        stats[name] = stats.get(name, 0) + value

    def finish_chunk(self, chunk: str) -> None:
        """Every frame of the chunk has been added: its counts go into the manifest with the
        shard that holds its last frame."""
        self._finished_chunks.append(chunk)
        if not self._buffer:  # nothing of it is waiting to be written
            self._commit_chunks()
            self._write_manifest()

    def flush(self) -> None:
        """Write the buffered frames as a shard (if any) and the manifest."""
        if self._buffer:
            self._write_shard()
        self._commit_chunks()
        self._write_manifest()

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write_shard(self) -> None:
        shards = self.manifest["shards"]
        name = f"shard-{len(shards):05d}.npz"
        arrays: dict[str, np.ndarray] = {}
        for position, (_, frame) in enumerate(self._buffer):
            arrays.update({f"f{position}/{k}": np.asarray(v) for k, v in frame.items()})
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        data = buffer.getvalue()
        _write_atomic(self.directory / name, data)
        keys = [key for key, _ in self._buffer]
        shards.append(
            {
                "file": name,
                "frames": len(keys),
                "sha256": hashlib.sha256(data).hexdigest(),
                "keys": keys,
            }
        )
        counts = self.manifest["counts"]
        counts["frames"] += len(keys)
        counts["shards"] = len(shards)
        self._buffer = []

    def _commit_chunks(self) -> None:
        counts = self.manifest["counts"]
        for chunk in self._finished_chunks:
            for name, value in self._chunk_stats.pop(chunk, {}).items():
                counts[name] = counts.get(name, 0) + value
            if chunk not in self.chunks_done:
                self.chunks_done.add(chunk)
                self.manifest["chunks_done"].append(chunk)
        self._finished_chunks = []

    def _write_manifest(self) -> None:
        self.manifest["updated"] = _now()
        text = json.dumps(self.manifest, indent=1) + "\n"
        _write_atomic(self.directory / MANIFEST, text.encode())


class ShardSet:
    """A finished (or partly finished) shard folder, for reading: every frame of every listed
    shard, as :class:`FrameLabel`."""

    def __init__(self, directory: Path, manifest: dict[str, Any]) -> None:
        self.directory = directory
        self.manifest = manifest
        self._where: dict[str, tuple[int, int]] = {}
        for number, shard in enumerate(manifest["shards"]):
            for position, key in enumerate(shard["keys"]):
                self._where[key] = (number, position)
        self._open: tuple[int, np.lib.npyio.NpzFile] | None = None

    @classmethod
    def open(cls, directory: str | Path) -> ShardSet:
        """Read and check the manifest; every listed shard file must exist.

        Raises:
            ShardError: No manifest, not a shard manifest, or a listed shard is missing or
                lists another number of frames than keys.
        """
        directory = Path(directory)
        manifest = read_manifest(directory)
        for name in ("teacher", "settings", "counts", "shards"):
            if name not in manifest:
                raise ShardError(f"{directory / MANIFEST} has no {name!r}")
        seen: set[str] = set()
        for shard in manifest["shards"]:
            path = directory / shard["file"]
            if not path.is_file():
                raise ShardError(f"{path} is listed in the manifest but missing")
            if shard["frames"] != len(shard["keys"]):
                raise ShardError(f"{path}: {shard['frames']} frames but {len(shard['keys'])} keys")
            repeated = seen.intersection(shard["keys"])
            if repeated:
                raise ShardError(f"{path} repeats frames {sorted(repeated)[:3]}")
            seen.update(shard["keys"])
        return cls(directory, manifest)

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["settings"]["classes"])

    @property
    def mask_size(self) -> int:
        return int(self.manifest["settings"]["mask_size"])

    def __len__(self) -> int:
        return len(self._where)

    def keys(self) -> list[str]:
        """Every frame key, in shard order."""
        return [key for shard in self.manifest["shards"] for key in shard["keys"]]

    def verify(self) -> list[str]:
        """The shard files whose sha256 differs from the manifest's (empty: all intact)."""
        bad = []
        for shard in self.manifest["shards"]:
            digest = hashlib.sha256((self.directory / shard["file"]).read_bytes()).hexdigest()
            if digest != shard["sha256"]:
                bad.append(shard["file"])
        return bad

    def frames(self, keys: Iterable[str] | None = None) -> Iterator[FrameLabel]:
        """The frames in shard order; only those in ``keys`` when given."""
        wanted = None if keys is None else set(keys)
        if wanted is not None:
            unknown = wanted - self._where.keys()
            if unknown:
                raise KeyError(f"frames not in {self.directory}: {sorted(unknown)[:5]}")
        for shard in self.manifest["shards"]:
            positions = [
                position
                for position, key in enumerate(shard["keys"])
                if wanted is None or key in wanted
            ]
            if not positions:
                continue
            with np.load(self.directory / shard["file"], allow_pickle=False) as npz:
                for position in positions:
                    yield FrameLabel.from_arrays(npz, f"f{position}/")

    def frame(self, key: str) -> FrameLabel:
        """One frame by key (the last shard read stays open, so nearby keys are cheap)."""
        if key not in self._where:
            raise KeyError(f"frame {key!r} is not in {self.directory}")
        number, position = self._where[key]
        return FrameLabel.from_arrays(self._shard(number), f"f{position}/")

    def split(self, held_out: float = 0.1, seed: int = 0) -> tuple[list[str], list[str]]:
        """(training keys, held-out keys), each in shard order. A frame's side depends only on
        its key and ``seed``, so frames added by a later run never move the others."""
        if not 0.0 <= held_out <= 1.0:
            raise ValueError(f"held_out must be a fraction from 0 to 1, got {held_out}")
        train, held = [], []
        for key in self.keys():
            digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
            (held if int.from_bytes(digest[:8], "little") < held_out * 2**64 else train).append(key)
        return train, held

    def __enter__(self) -> ShardSet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the shard file :meth:`frame` keeps open."""
        if self._open is not None:
            self._open[1].close()
            self._open = None

    def _shard(self, number: int) -> np.lib.npyio.NpzFile:
        if self._open is None or self._open[0] != number:
            self.close()
            path = self.directory / self.manifest["shards"][number]["file"]
            self._open = (number, np.load(path, allow_pickle=False))
        return self._open[1]
