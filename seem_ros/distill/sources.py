"""Frames to label: the SRC arguments of ``seem-ros label`` as sources, cut into chunks.

A *source* is an image folder, a video file or one image topic of a rosbag2 (sqlite3 or
MCAP; ``sensor_msgs/Image`` and ``CompressedImage``). A folder argument is searched
recursively: the images of each folder are one source, every video and bag below it another
(a fleet's archive is a folder of bags). Enumerating sources reads directory listings, video
headers and bag metadata, never a frame.

A *chunk* is a stretch of one source that a worker reads on its own (:func:`read_chunk`): a
run of an image folder's sorted files, of a video's frame numbers, or a time window of a bag
topic (sized from the topic's message count so that it holds about ``chunk_frames`` kept
frames). Chunks are plain JSON, so Ray ships them to any node of a cluster.

Frame keys are ``"{source id}:{locator}"``. The source id is the SRC argument's own name plus
the path below it (``archive/robot1/run3.mcap@/camera/image_raw``), so the same data gives the
same keys on any machine and from any working directory; it never holds ``:``. The locator is
the file name in an image folder (stable when the folder grows), the frame number in a video,
and the bag time (ns) in a bag (stable however the bag is chunked).

Reading a chunk applies ``stride`` (keep frame ``i`` when ``i % stride == 0``; a bag's ``i``
counts from its chunk's start) and skips a frame that is nearly identical to the previous
kept frame of the chunk: the mean absolute difference of 32x32 grey thumbnails below
``dedup_threshold`` grey levels (0 keeps everything). A frame that cannot be decoded is
reported as bad and skipped.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

LOG = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")
BAG_SUFFIXES = (".mcap", ".db3")
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
# image topics that are never camera frames: a node's mask prompt and seem-ros's own outputs
NOT_CAMERA_SUFFIXES = ("/prompt/mask", "/seem/overlay", "/seem/instance_mask")
THUMBNAIL = 32
VIDEO_FAILURES_IN_A_ROW = 8  # a video that fails this often has ended or is broken


class SourceError(ValueError):
    """A SRC argument cannot be used; the message says why."""


@dataclass(frozen=True)
class Selection:
    """Which frames of a source are kept (recorded in the manifest; a resumed run must match).

    Args:
        stride: keep every ``stride``-th frame.
        dedup_threshold: skip a frame whose 32x32 grey thumbnail differs from the previous
            kept frame's by less than this mean absolute difference (grey levels); 0 keeps all.
        chunk_frames: about this many kept frames per chunk (one read task).
    """

    stride: int = 1
    dedup_threshold: float = 2.0
    chunk_frames: int = 64

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise SourceError(f"stride must be at least 1, got {self.stride}")
        if self.dedup_threshold < 0:
            raise SourceError(f"dedup threshold must be >= 0, got {self.dedup_threshold}")
        if self.chunk_frames < 1:
            raise SourceError(f"chunk size must be at least 1 frame, got {self.chunk_frames}")

    @property
    def span(self) -> int:
        """Source frames per chunk (before the stride)."""
        return self.chunk_frames * self.stride

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Source:
    """One image folder, video, or bag topic. ``path`` is absolute; ``files`` are an image
    folder's sorted file names; ``frames`` is the expected frame count (0: unknown)."""

    id: str
    kind: str  # "images" | "video" | "bag"
    path: str
    topic: str = ""
    msgtype: str = ""
    files: tuple[str, ...] = ()
    frames: int = 0
    start_ns: int = 0  # bags: the bag's time range
    end_ns: int = 0

    def to_dict(self) -> dict[str, Any]:
        """What the manifest records about the source."""
        info: dict[str, Any] = {"id": self.id, "kind": self.kind, "path": self.path}
        if self.topic:
            info["topic"] = self.topic
        info["frames"] = self.frames
        return info


@dataclass(frozen=True)
class Chunk:
    """A stretch of a source one worker reads: positions ``start`` to ``stop`` (exclusive;
    None: to the end) in the source's file list, frame numbers, or bag time (ns).
    ``done`` lists the locators already labelled (a resumed run): read, not labelled again."""

    source_id: str
    kind: str
    path: str
    start: int
    stop: int | None
    topic: str = ""
    msgtype: str = ""
    files: tuple[str, ...] = ()
    done: tuple[str, ...] = field(default=(), compare=False)

    @property
    def id(self) -> str:
        return f"{self.source_id}|{self.start}-{'' if self.stop is None else self.stop}"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Chunk:
        data = json.loads(text)
        data["files"] = tuple(data["files"])
        data["done"] = tuple(data["done"])
        return cls(**data)


@dataclass
class FrameRead:
    """One frame as read: ``image`` RGB, or None with ``error`` when it could not be decoded."""

    locator: str
    index: int
    stamp_ns: int
    image: np.ndarray | None
    error: str = ""


# ---------------------------------------------------------------------- enumeration
def _quote(part: str) -> str:
    return part.replace("%", "%25").replace(":", "%3A")


def source_id(root_name: str, relative: Path) -> str:
    """``root_name/relative`` (just ``root_name`` for the root itself), without ``:``."""
    text = root_name if str(relative) in ("", ".") else f"{root_name}/{relative.as_posix()}"
    return _quote(text)


def split_key(key: str) -> tuple[str, str]:
    """A frame key -> (source id, locator)."""
    source, _, locator = key.partition(":")
    return source, locator


def _is_bag_dir(path: Path) -> bool:
    return (path / "metadata.yaml").is_file()


def enumerate_sources(
    arguments: Sequence[str | Path], topics: Sequence[str] = ()
) -> tuple[list[Source], list[str]]:
    """The sources named by SRC arguments, in argument order, each folder walked in sorted
    order. Returns ``(sources, problems)``: a bag or video that cannot be opened, or a bag
    without a usable image topic, is a problem (logged and skipped), not an error.

    Raises:
        SourceError: An argument does not exist or is not something frames come from, or two
            arguments share a name (their keys would collide).
    """
    sources: list[Source] = []
    problems: list[str] = []
    owners: dict[str, Path] = {}
    for argument in arguments:
        path = Path(argument).expanduser().resolve()
        if not path.exists():
            raise SourceError(f"frame source not found: {argument}")
        root_name = path.name or "root"
        if root_name in owners and owners[root_name] != path:
            raise SourceError(
                f"{owners[root_name]} and {path} have the same name {root_name!r}, so their "
                "frame keys would collide; pass their parent folder, or link one under "
                "another name"
            )
        owners[root_name] = path
        known_problems = len(problems)
        found = _sources_under(path, root_name, topics, problems)
        if not found and len(problems) == known_problems:
            raise SourceError(
                f"no frames in {argument}: no images ({', '.join(IMAGE_SUFFIXES)}), videos "
                f"({', '.join(VIDEO_SUFFIXES)}) or rosbag2 bags"
            )
        sources += found
    return _merge_image_groups(sources), problems


def _sources_under(
    path: Path, root_name: str, topics: Sequence[str], problems: list[str]
) -> list[Source]:
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:  # a single image: its folder's source, one file
            sid = source_id(path.parent.name or "root", Path())
            return [_image_source(path.parent, sid, [path.name])]
        if suffix in VIDEO_SUFFIXES:
            return _video_source(path, source_id(root_name, Path()), problems)
        if suffix in BAG_SUFFIXES:
            return _bag_sources(path, source_id(root_name, Path()), topics, problems)
        raise SourceError(f"{path} is not an image, a video or a rosbag2 file")
    if _is_bag_dir(path):
        return _bag_sources(path, source_id(root_name, Path()), topics, problems)
    found: list[Source] = []
    for folder, dirs, files in os.walk(path):
        here = Path(folder)
        relative = here.relative_to(path)
        bag_dirs = [d for d in dirs if _is_bag_dir(here / d)]
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in bag_dirs)
        images = sorted(f for f in files if Path(f).suffix.lower() in IMAGE_SUFFIXES)
        if images:
            found.append(_image_source(here, source_id(root_name, relative), images))
        for name in sorted(files + bag_dirs):
            suffix = Path(name).suffix.lower()
            sid = source_id(root_name, relative / name)
            if name in bag_dirs or suffix in BAG_SUFFIXES:
                found += _bag_sources(here / name, sid, topics, problems)
            elif suffix in VIDEO_SUFFIXES:
                found += _video_source(here / name, sid, problems)
    return found


def _image_source(folder: Path, sid: str, names: list[str]) -> Source:
    return Source(sid, "images", str(folder), files=tuple(names), frames=len(names))


def _merge_image_groups(sources: list[Source]) -> list[Source]:
    """A single image named beside its folder joins the folder's source.

    Raises:
        SourceError: Two different sources would have one id (single images from two
            folders of one name).
    """
    merged: dict[tuple[str, str], Source] = {}
    result: list[Source] = []
    where: dict[str, str] = {}
    for source in sources:
        if where.setdefault(source.id, source.path) != source.path:
            raise SourceError(
                f"{where[source.id]} and {source.path} would both be source {source.id!r}, so "
                "their frame keys could collide; name their folders instead"
            )
        group = (source.id, source.path)
        if source.kind == "images" and group in merged:
            first = merged[group]
            names = tuple(sorted(set(first.files) | set(source.files)))
            merged[group] = Source(first.id, "images", first.path, files=names, frames=len(names))
            result[result.index(first)] = merged[group]
            continue
        if source.kind == "images":
            merged[group] = source
        result.append(source)
    return result


def _video_source(path: Path, sid: str, problems: list[str]) -> list[Source]:
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            problems.append(f"{path}: OpenCV cannot open this video; skipped")
            return []
        frames = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    finally:
        capture.release()
    return [Source(sid, "video", str(path), frames=frames)]


def camera_topics(topics: dict[str, str]) -> list[str]:
    """A bag's camera image topics: Image / CompressedImage, minus masks and seem outputs."""
    return sorted(
        topic
        for topic, ros_type in topics.items()
        if ros_type in IMAGE_TYPES and not topic.endswith(NOT_CAMERA_SUFFIXES)
    )


def _bag_sources(path: Path, sid: str, topics: Sequence[str], problems: list[str]) -> list[Source]:
    from rosbags.rosbag2 import Reader

    try:
        reader = Reader(path)
        reader.open()
    except Exception as error:  # rosbags raises its own errors, sqlite's, yaml's, ...
        problems.append(f"{path}: cannot open as a rosbag2 bag ({error}); skipped")
        return []
    try:
        types = {c.topic: c.msgtype for c in reader.connections}
        counts: dict[str, int] = {}
        for connection in reader.connections:
            counts[connection.topic] = counts.get(connection.topic, 0) + connection.msgcount
        if topics:
            chosen = [t for t in topics if t in types]
            wrong = [t for t in chosen if types[t] not in IMAGE_TYPES]
            if wrong:
                problems.append(f"{path}: {wrong} are not image topics ({types}); skipped")
            chosen = [t for t in chosen if types[t] in IMAGE_TYPES]
        else:
            chosen = camera_topics(types)
        if not chosen:
            wanted = f"topic {list(topics)}" if topics else "Image or CompressedImage topic"
            problems.append(f"{path}: no {wanted} in this bag (it has {sorted(types)}); skipped")
            return []
        return [
            Source(
                f"{sid}@{_quote(topic)}",
                "bag",
                str(path),
                topic=topic,
                msgtype=types[topic],
                frames=counts[topic],
                start_ns=reader.start_time,
                end_ns=reader.end_time,
            )
            for topic in chosen
        ]
    finally:
        reader.close()


# ---------------------------------------------------------------------- chunking
def chunks_of(source: Source, selection: Selection, done: Iterable[str] = ()) -> list[Chunk]:
    """Cut a source into chunks of ``selection.span`` frames (a bag: time windows expected to
    hold as many); ``done`` are locators of this source already labelled."""
    span = selection.span
    done_set = set(done)
    base = {"source_id": source.id, "kind": source.kind, "path": source.path}
    chunks: list[Chunk] = []
    if source.kind == "images":
        for start in range(0, len(source.files), span):
            files = source.files[start : start + span]
            stop = start + len(files)
            chunks.append(
                Chunk(**base, start=start, stop=stop, files=files, done=_done_in(files, done_set))
            )
    elif source.kind == "video":
        count = math.ceil(source.frames / span) if source.frames else 1
        for number in range(count):
            start = number * span
            stop = None if number == count - 1 else start + span
            in_range = _done_numbers(done_set, start, stop)
            chunks.append(Chunk(**base, start=start, stop=stop, done=in_range))
    elif source.kind == "bag":
        count = max(1, math.ceil(source.frames / span))
        duration = max(1, source.end_ns - source.start_ns)
        bounds = [source.start_ns + duration * k // count for k in range(count)]
        for number, start in enumerate(bounds):
            stop = None if number == count - 1 else bounds[number + 1]
            in_range = _done_numbers(done_set, start, stop)
            chunks.append(
                Chunk(
                    **base,
                    start=start,
                    stop=stop,
                    topic=source.topic,
                    msgtype=source.msgtype,
                    done=in_range,
                )
            )
    else:
        raise SourceError(f"unknown source kind {source.kind!r}")
    return chunks


def _done_in(files: Sequence[str], done: set[str]) -> tuple[str, ...]:
    return tuple(name for name in files if name in done)


def _done_numbers(done: set[str], start: int, stop: int | None) -> tuple[str, ...]:
    """The done locators (``N`` or a bag's ``N.k``) whose number lies in [start, stop)."""
    found = []
    for locator in done:
        number = int(locator.split(".", 1)[0])
        if number >= start and (stop is None or number < stop):
            found.append(locator)
    return tuple(sorted(found, key=lambda text: (int(text.split(".", 1)[0]), text)))


def expected_frames(
    chunks: Sequence[Chunk], sources: dict[str, Source], selection: Selection
) -> int:
    """About how many frames the chunks will offer for labelling (after the stride, before
    de-duplication), for a progress bar; a video that does not say its length counts 0."""
    stride = selection.stride
    total = 0
    for chunk in chunks:
        source = sources[chunk.source_id]
        if chunk.kind == "images":
            kept = len(range(chunk.start + (-chunk.start) % stride, chunk.stop or 0, stride))
        elif chunk.kind == "video":
            stop = chunk.stop if chunk.stop is not None else source.frames
            kept = len(range(chunk.start, max(chunk.start, stop), stride))
        else:
            windows = max(1, math.ceil(source.frames / selection.span))
            kept = math.ceil(source.frames / windows / stride)
        total += max(0, kept - len(chunk.done))
    return total


# ---------------------------------------------------------------------- reading
def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """32x32 grey thumbnail (float32), for near-duplicate detection."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA).astype(np.float32)


@dataclass
class ChunkStats:
    """What reading one chunk skipped."""

    stride_skipped: int = 0
    duplicates_skipped: int = 0
    bad_frames: int = 0
    already_done: int = 0
    unreadable: str = ""  # why the chunk's source could not be read (all of it or from a point)


def read_chunk(chunk: Chunk, selection: Selection) -> Iterator[tuple[str, FrameRead | ChunkStats]]:
    """Read a chunk: ``("frame", FrameRead)`` for each frame to label (new, not a duplicate),
    ``("bad", FrameRead)`` for each that could not be decoded, and finally
    ``("end", ChunkStats)``. Never raises for bad data: a source that cannot be read from
    some point on ends the chunk with ``ChunkStats.unreadable`` set."""
    stats = ChunkStats()
    done = set(chunk.done)
    previous: np.ndarray | None = None
    try:
        for frame in _frames(chunk, selection.stride, stats):
            if frame.image is None:
                stats.bad_frames += 1
                yield "bad", frame
                continue
            small = thumbnail(frame.image)
            if (
                previous is not None
                and float(np.mean(np.abs(small - previous))) < selection.dedup_threshold
            ):
                stats.duplicates_skipped += 1
                continue
            previous = small
            if frame.locator in done:
                stats.already_done += 1
                continue
            yield "frame", frame
    except Exception as error:  # a broken file must cost its frames, never the run
        stats.unreadable = f"{type(error).__name__}: {error}"
    yield "end", stats


def _frames(chunk: Chunk, stride: int, stats: ChunkStats) -> Iterator[FrameRead]:
    if chunk.kind == "images":
        yield from _image_frames(chunk, stride, stats)
    elif chunk.kind == "video":
        yield from _video_frames(chunk, stride, stats)
    elif chunk.kind == "bag":
        yield from _bag_frames(chunk, stride, stats)
    else:
        raise SourceError(f"unknown chunk kind {chunk.kind!r}")


def _image_frames(chunk: Chunk, stride: int, stats: ChunkStats) -> Iterator[FrameRead]:
    folder = Path(chunk.path)
    for offset, name in enumerate(chunk.files):
        index = chunk.start + offset
        if index % stride:
            stats.stride_skipped += 1
            continue
        try:
            data = np.fromfile(folder / name, dtype=np.uint8)
            bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        except OSError as error:
            yield FrameRead(name, index, 0, None, f"cannot read {folder / name}: {error}")
            continue
        if bgr is None:
            yield FrameRead(name, index, 0, None, f"{folder / name}: not a decodable image")
            continue
        yield FrameRead(name, index, 0, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _video_frames(chunk: Chunk, stride: int, stats: ChunkStats) -> Iterator[FrameRead]:
    """A video's frames from ``chunk.start`` (seeking there). A frame that does not decode is
    bad when a later one does; failures running into the end of a video are its end (the last
    chunk) or, in a chunk that should go on, make the rest of the chunk bad."""
    capture = cv2.VideoCapture(chunk.path)
    if not capture.isOpened():
        raise SourceError(f"OpenCV cannot open video {chunk.path}")
    try:
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        if chunk.start:
            capture.set(cv2.CAP_PROP_POS_FRAMES, chunk.start)
        index, failed = chunk.start, []  # failed: wanted frames since the last good one
        while chunk.stop is None or index < chunk.stop:
            wanted = index % stride == 0
            ok, image = capture.grab(), None
            if ok and wanted:
                ok, bgr = capture.retrieve()
                image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok and bgr is not None else None
                ok = image is not None
            if not ok:
                failed.append(index)
                index += 1
                if len(failed) >= VIDEO_FAILURES_IN_A_ROW:
                    break
                continue
            for lost in failed:  # decoding went on after them: they were bad frames
                if lost % stride == 0:
                    yield FrameRead(str(lost), lost, 0, None, f"{chunk.path}: frame {lost}")
            failed = []
            if not wanted:
                stats.stride_skipped += 1
            else:
                stamp = round(index * 1e9 / fps) if fps > 0 else 0
                yield FrameRead(str(index), index, stamp, image)
            index += 1
        if chunk.stop is not None and (failed or index < chunk.stop):
            first = failed[0] if failed else index
            stats.unreadable = f"{chunk.path}: frames {first}..{chunk.stop - 1} unreadable"
            stats.bad_frames += len(range(first + (-first) % stride, chunk.stop, stride))
    finally:
        capture.release()


def _bag_frames(chunk: Chunk, stride: int, stats: ChunkStats) -> Iterator[FrameRead]:
    from rosbags.rosbag2 import Reader

    from ..ros.image_codec import compressed_msg_to_rgb, image_msg_to_rgb
    from ..ros.messages import COMPRESSED_IMAGE, deserialize, ns_from_stamp

    to_rgb = compressed_msg_to_rgb if chunk.msgtype == COMPRESSED_IMAGE else image_msg_to_rgb
    reader = Reader(Path(chunk.path))
    reader.open()
    try:
        connections = [c for c in reader.connections if c.topic == chunk.topic]
        if not connections:
            raise SourceError(f"{chunk.path} has no topic {chunk.topic}")
        seen: dict[int, int] = {}
        messages = reader.messages(connections=connections, start=chunk.start, stop=chunk.stop)
        for ordinal, (_, time_ns, raw) in enumerate(messages):
            repeat = seen.get(time_ns, 0)
            seen[time_ns] = repeat + 1
            locator = f"{time_ns}.{repeat}" if repeat else str(time_ns)
            if ordinal % stride:
                stats.stride_skipped += 1
                continue
            try:
                message = deserialize(raw, chunk.msgtype)
                image = to_rgb(message)
                stamp = ns_from_stamp(message.header.stamp) or time_ns
            except Exception as error:  # corrupt CDR, bad encodings, undecodable JPEG, ...
                problem = f"{chunk.path} {chunk.topic} @ {time_ns}: {error}"
                yield FrameRead(locator, time_ns, time_ns, None, problem)
                continue
            yield FrameRead(locator, time_ns, stamp, image)
    finally:
        reader.close()
