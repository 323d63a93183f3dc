"""The teacher pass on Ray Data: read chunks anywhere, label on teacher actors, write here.

::

    from_items(chunks) -> flat_map(frame_rows)            read tasks: decode, stride, dedup
                       -> map_batches(TeacherActor)        one teacher per actor (GPU or CPU)
                       -> iter_rows() on the driver       -> ShardWriter

The driver never decodes a frame: it lists sources, cuts them into chunks (JSON items) and
writes what the actors return (each frame's arrays as ``.npz`` bytes). Order is preserved,
so shards come out in chunk order whatever the cluster does. Rows carry a ``kind``:
``label`` (a labelled frame), ``bad`` (a frame that could not be decoded), ``failed`` (the
teacher raised on a frame) and ``end`` (a chunk is done, with its skip counts). Bad and failed
frames are counted and skipped; they never stop the run.

On a cluster every node must see the teacher and the frame sources at the same paths (a
shared filesystem) and have seem_ros installed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .shards import ShardWriter, pack_arrays, unpack_arrays
from .sources import Chunk, Selection, read_chunk
from .teacher import LabelSettings, TeacherLabeler

LOG = logging.getLogger(__name__)
BLOCK_BYTES = 1 << 20
MAX_BLOCKS = 10_000  # at most this many read tasks' worth of input blocks
LOGGED_PROBLEMS = 10  # bad frames logged one by one; later ones only counted
ROW_DEFAULTS: dict[str, Any] = {
    "kind": "",
    "chunk": "",
    "key": "",
    "source": "",
    "index": 0,
    "stamp_ns": 0,
    "height": 0,
    "width": 0,
    "image": b"",
    "error": "",
    "stats": "",
}


OUTPUT_COLUMNS = ("kind", "chunk", "key", "error", "payload", "stats")


class PipelineError(RuntimeError):
    """The Ray side cannot run as asked (missing resources, no Ray)."""


def settings_from_dict(data: dict[str, Any]) -> LabelSettings:
    values = dict(data)
    values["classes"] = tuple(values["classes"])
    values["phrases"] = tuple(values.get("phrases", ()))
    return LabelSettings(**values)


@dataclass
class LabelJob:
    """What to label and with what: the teacher's path (visible to every worker), its
    settings, the frame selection and the chunks still to do."""

    teacher: str
    settings: LabelSettings
    selection: Selection
    chunks: list[Chunk]
    num_gpus: int = 0
    replicas: int = 1
    batch_size: int = 4

    @property
    def actors(self) -> int:
        return self.num_gpus if self.num_gpus else self.replicas

    @property
    def device(self) -> str:
        return "cuda" if self.num_gpus else "cpu"


# ---------------------------------------------------------------------- workers
def _row(kind: str, chunk: str, **values: Any) -> dict[str, Any]:
    return {**ROW_DEFAULTS, "kind": kind, "chunk": chunk, **values}


def frame_rows(item: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Ray flat_map: one chunk item -> its frame rows (raw RGB bytes), bad rows, an end row."""
    chunk = Chunk.from_json(item["chunk"])
    selection = Selection(**json.loads(item["selection"]))
    for kind, read in read_chunk(chunk, selection):
        if kind == "end":
            yield _row("end", chunk.id, stats=json.dumps(asdict(read)))
            continue
        key = f"{chunk.source_id}:{read.locator}"
        if kind == "bad":
            yield _row("bad", chunk.id, key=key, error=read.error)
            continue
        image = np.ascontiguousarray(read.image)
        yield _row(
            "frame",
            chunk.id,
            key=key,
            source=chunk.source_id,
            index=int(read.index),
            stamp_ns=int(read.stamp_ns),
            height=image.shape[0],
            width=image.shape[1],
            image=image.tobytes(),
        )


class TeacherActor:
    """Ray map_batches callable class: loads the teacher once, labels frame rows."""

    def __init__(self, teacher: str, settings: dict[str, Any], device: str) -> None:
        if device == "cpu":
            import torch

            torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
        self.labeler = TeacherLabeler.from_path(
            teacher, settings_from_dict(settings), device=device
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, list[Any]] = {name: [] for name in OUTPUT_COLUMNS}
        for i in range(len(batch["kind"])):
            kind, error, payload = str(batch["kind"][i]), str(batch["error"][i]), b""
            key = str(batch["key"][i])
            if kind == "frame":
                try:
                    shape = (int(batch["height"][i]), int(batch["width"][i]), 3)
                    image = np.frombuffer(batch["image"][i], dtype=np.uint8).reshape(shape)
                    label = self.labeler.label(
                        image,
                        key=key,
                        source=str(batch["source"][i]),
                        index=int(batch["index"][i]),
                        stamp_ns=int(batch["stamp_ns"][i]),
                    )
                    payload, kind = pack_arrays(label.to_arrays("")), "label"
                except Exception as problem:  # one frame's failure is counted, not fatal
                    kind, error = "failed", f"teacher failed: {type(problem).__name__}: {problem}"
            out["kind"].append(kind)
            out["chunk"].append(str(batch["chunk"][i]))
            out["key"].append(key)
            out["error"].append(error)
            out["payload"].append(payload)
            out["stats"].append(str(batch["stats"][i]))
        return {name: np.array(values, dtype=object) for name, values in out.items()}


# ---------------------------------------------------------------------- driver
@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Joins the cluster at ``address`` (``auto``: the one this node belongs to), or starts a
    local Ray instance (no dashboard); shut down (or left) afterwards. A Ray instance this
    process already runs is used as it is and left running."""
    import ray

    if ray.is_initialized():
        yield
        return
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        ray.init(address=address, **options)
    else:
        # "local": a new instance, even where another one runs on this machine
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **options)
    try:
        yield
    finally:
        ray.shutdown()


def check_resources(job: LabelJob) -> None:
    """Ray Data waits forever for resources a cluster lacks: refuse instead.

    Raises:
        PipelineError: Fewer GPUs than ``--num-gpus``, or no CPU left for reading.
    """
    import ray

    resources = ray.cluster_resources()
    gpus, cpus = resources.get("GPU", 0.0), resources.get("CPU", 0.0)
    if job.num_gpus and gpus < job.num_gpus:
        raise PipelineError(f"--num-gpus {job.num_gpus}, but the Ray cluster has {gpus:g} GPU(s)")
    if cpus < job.actors + 1:
        what = f"{job.num_gpus} GPU teachers" if job.num_gpus else f"{job.replicas} CPU teachers"
        raise PipelineError(
            f"{what} take {job.actors} CPU(s) and reading needs one more, but the Ray cluster "
            f"has {cpus:g}; use fewer --replicas or a bigger cluster"
        )


def label_rows(job: LabelJob) -> Iterator[dict[str, Any]]:
    """The output rows of the pipeline, in chunk order (inside a :func:`ray_session`)."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False  # the command has its own, in frames
    # small blocks: a labelled frame reaches the writer (and the progress bar) within a batch
    # or two, not when its whole chunk is done
    context.target_max_block_size = BLOCK_BYTES
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    selection = json.dumps(job.selection.to_dict())
    items = [{"chunk": chunk.to_json(), "selection": selection} for chunk in job.chunks]
    dataset = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), MAX_BLOCKS)))
    dataset = dataset.flat_map(frame_rows)
    dataset = dataset.map_batches(
        TeacherActor,
        fn_constructor_kwargs={
            "teacher": job.teacher,
            "settings": job.settings.to_dict(),
            "device": job.device,
        },
        batch_size=job.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=job.actors),
        num_gpus=1 if job.num_gpus else 0,
        num_cpus=1,
    )
    yield from dataset.iter_rows()


@dataclass
class LabelSummary:
    """What one run did (the manifest holds the totals over every run)."""

    labelled: int = 0
    failed: int = 0
    bad: int = 0
    duplicates: int = 0
    stride_skipped: int = 0
    unreadable_chunks: int = 0
    chunks: int = 0
    seconds: float = 0.0
    reached_max: bool = False
    problems: int = 0

    @property
    def frames_per_second(self) -> float:
        return self.labelled / self.seconds if self.seconds > 0 else 0.0

    def postfix(self) -> dict[str, int]:
        return {"bad": self.bad + self.failed, "dup": self.duplicates}


def run_labelling(
    job: LabelJob,
    writer: ShardWriter,
    *,
    max_frames: int | None = None,
    on_frame: Callable[[LabelSummary], None] | None = None,
    rows: Iterator[dict[str, Any]] | None = None,
) -> LabelSummary:
    """Label ``job``'s chunks into ``writer`` until they are done or the folder holds
    ``max_frames`` frames. ``on_frame`` is called after each labelled, bad or skipped frame
    (progress). ``rows`` replaces the Ray pipeline (tests)."""
    summary = LabelSummary()
    start = time.perf_counter()
    stream = rows if rows is not None else label_rows(job)
    try:
        for row in stream:
            kind, chunk = str(row["kind"]), str(row["chunk"])
            if kind == "label":
                writer.add(str(row["key"]), unpack_arrays(bytes(row["payload"])))
                summary.labelled += 1
            elif kind in ("bad", "failed"):
                if kind == "failed":  # a bad read is counted with its chunk's end row
                    writer.count(chunk, "bad_frames")
                    summary.failed += 1
                _note(summary, f"{row['key']}: {row['error']}")
            elif kind == "end":
                stats = json.loads(str(row["stats"]))
                summary.chunks += 1
                summary.duplicates += stats["duplicates_skipped"]
                summary.stride_skipped += stats["stride_skipped"]
                summary.bad += stats["bad_frames"]
                for name in ("duplicates_skipped", "stride_skipped", "bad_frames"):
                    writer.count(chunk, name, stats[name])
                if stats["unreadable"]:
                    writer.count(chunk, "unreadable_chunks")
                    summary.unreadable_chunks += 1
                    _note(summary, f"chunk {chunk}: {stats['unreadable']}")
                writer.finish_chunk(chunk)
            if on_frame is not None and kind != "end":
                on_frame(summary)
            if max_frames is not None and writer.frames >= max_frames:
                summary.reached_max = True
                break
    finally:
        if hasattr(stream, "close"):
            stream.close()
        summary.seconds = time.perf_counter() - start
    return summary


def _note(summary: LabelSummary, problem: str) -> None:
    summary.problems += 1
    if summary.problems <= LOGGED_PROBLEMS:
        LOG.warning("skipped %s", problem)
    elif summary.problems == LOGGED_PROBLEMS + 1:
        LOG.warning("more frames skipped; they are counted, not logged (-v logs each)")
    else:
        LOG.debug("skipped %s", problem)
