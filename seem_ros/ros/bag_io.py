"""rosbag2 reading and writing on serialized messages, without rclpy.

Bags hold the same CDR bytes the middleware adapters move, so the offline path
feeds the core exactly what a live topic would. Both rosbag2 storage formats
(sqlite3 ``.db3`` and MCAP) are handled by ``rosbags.rosbag2``. MCAP output
embeds ``ros2msg`` schemas generated from the shared typestore, which is what
MCAP tools (``mcap_ros2``, Foxglove) need to decode messages without ROS.

The writer produces rosbag2 metadata version 8, the oldest ``rosbags`` can write.
The storage files themselves are plain sqlite3 / MCAP and readable without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, NamedTuple, TypeVar

import numpy as np
from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from seem_ros.ros.image_codec import rgb_to_image_msg
from seem_ros.ros.messages import (
    IMAGE,
    STRING,
    TYPESTORE,
    make_header,
    make_string,
    normalize_type_name,
    serialize,
)

Storage = Literal["mcap", "sqlite3"]
_STORAGE_PLUGINS: dict[str, StoragePlugin] = {
    "mcap": StoragePlugin.MCAP,
    "sqlite3": StoragePlugin.SQLITE3,
}
_BAG_VERSION: Literal[8] = 8
_Self = TypeVar("_Self", bound="_ClosesOnExit")


class BagMessage(NamedTuple):
    """One serialized message read from a bag."""

    topic: str
    ros_type: str
    timestamp_ns: int
    cdr: bytes


class _ClosesOnExit:
    """``with bag:`` closes the bag on exit, on errors too.

    For a writer that matters: a bag with the messages written so far is more useful
    for debugging than an unreadable one.
    """

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class BagReader(_ClosesOnExit):
    """Reads a rosbag2 directory, or a bare ``.mcap`` / ``.db3`` file.

    Use as a context manager, or call :meth:`close` when done.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a rosbag2 bag.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except FileNotFoundError:
            raise
        except Exception as exc:  # rosbags raises its own ReaderError and sqlite errors
            raise ValueError(f"cannot open {self.path} as a rosbag2 bag: {exc}") from exc

    def topics(self) -> dict[str, str]:
        """Return ``{topic name: ros type}`` for every topic in the bag.

        Types are as recorded (``pkg/msg/Name``), including ones this package's
        typestore does not know, so foreign bags can still be listed and filtered.
        """
        return {connection.topic: connection.msgtype for connection in self._reader.connections}

    @property
    def message_count(self) -> int:
        """Number of messages in the bag."""
        return self._reader.message_count

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        """Yield messages in timestamp order, optionally only those on ``topics``.

        Raises:
            ValueError: A requested topic is not in the bag.
        """
        connections = self._reader.connections
        if topics is not None:
            wanted = set(topics)
            missing = wanted - {connection.topic for connection in connections}
            if missing:
                raise ValueError(
                    f"topics {sorted(missing)} are not in {self.path}; "
                    f"it has {sorted(self.topics())}"
                )
            connections = [c for c in connections if c.topic in wanted]
            if not connections:
                return
        for connection, timestamp_ns, data in self._reader.messages(connections=connections):
            yield BagMessage(connection.topic, connection.msgtype, timestamp_ns, bytes(data))

    def close(self) -> None:
        """Close the bag; further reads fail."""
        if self._reader.is_open:
            self._reader.close()


class BagWriter(_ClosesOnExit):
    """Writes serialized messages to a new rosbag2 directory.

    ``path`` must not exist yet; the bag is a directory holding ``metadata.yaml``
    and one storage file. Use as a context manager, or call :meth:`close`, which
    writes the metadata and indexes.

    Raises:
        FileExistsError: ``path`` exists.
        ValueError: ``storage`` is neither ``"mcap"`` nor ``"sqlite3"``.
    """

    def __init__(self, path: str | Path, storage: Storage = "mcap") -> None:
        self.path = Path(path)
        if storage not in _STORAGE_PLUGINS:
            raise ValueError(f"storage must be 'mcap' or 'sqlite3', got {storage!r}")
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists; a bag is only written to a new path")
        self.storage = storage
        self._writer = Writer(
            self.path, version=_BAG_VERSION, storage_plugin=_STORAGE_PLUGINS[storage]
        )
        self._writer.open()
        self._connections: dict[str, Connection] = {}
        self._closed = False

    def add_topic(self, name: str, ros_type: str) -> None:
        """Declare a topic; adding the same name and type again is a no-op.

        Raises:
            ValueError: ``name`` was already added with another type.
            MessageError: ``ros_type`` is unknown.
        """
        canonical = normalize_type_name(ros_type)
        existing = self._connections.get(name)
        if existing is not None:
            if existing.msgtype != canonical:
                raise ValueError(
                    f"topic {name!r} already has type {existing.msgtype}, not {canonical}"
                )
            return
        self._connections[name] = self._writer.add_connection(name, canonical, typestore=TYPESTORE)

    def write(self, topic: str, timestamp_ns: int, cdr: bytes | memoryview) -> None:
        """Append one serialized message (CDR with encapsulation header).

        Raises:
            ValueError: Unknown topic, negative timestamp, or closed writer.
        """
        if self._closed:
            raise ValueError(f"bag {self.path} is closed")
        connection = self._connections.get(topic)
        if connection is None:
            raise ValueError(f"topic {topic!r} was not added; call add_topic first")
        if timestamp_ns < 0:
            raise ValueError(f"timestamp must be non-negative, got {timestamp_ns}")
        self._writer.write(connection, int(timestamp_ns), cdr)

    def close(self) -> None:
        """Finish the bag (metadata, indexes); idempotent."""
        if not self._closed:
            self._closed = True
            self._writer.close()


def write_sample_bag(
    path: str | Path,
    storage: Storage,
    frames: Sequence[np.ndarray],
    *,
    prompts: Sequence[tuple[int, str]] = (),
    image_topic: str = "/camera/image_raw",
    prompt_topic: str = "/prompt/classes",
    frame_id: str = "camera",
    start_ns: int = 1_700_000_000_000_000_000,
    period_ns: int = 100_000_000,
) -> Path:
    """Write a small bag of RGB frames plus optional text prompts.

    Frame ``i`` is stamped (header and bag time) ``start_ns + i * period_ns``.

    Args:
        path: New bag directory.
        storage: ``"mcap"`` or ``"sqlite3"``.
        frames: HxWx3 uint8 RGB images, written as rgb8 ``sensor_msgs/msg/Image``.
        prompts: ``(timestamp_ns, text)`` pairs written as ``std_msgs/msg/String``,
            e.g. ``"cup, bottle"`` for class prompts.
        image_topic: Topic for the frames.
        prompt_topic: Topic for the prompts.
        frame_id: Header frame of the images.
        start_ns: Stamp of the first frame.
        period_ns: Time between frames.

    Returns:
        The bag directory.
    """
    if not frames:
        raise ValueError("a sample bag needs at least one frame")
    if period_ns <= 0:
        raise ValueError(f"period_ns must be positive, got {period_ns}")
    stamped: list[tuple[int, str, bytes]] = []
    for index, rgb in enumerate(frames):
        stamp_ns = start_ns + index * period_ns
        image = rgb_to_image_msg(rgb, make_header(stamp_ns, frame_id))
        stamped.append((stamp_ns, image_topic, serialize(image, IMAGE)))
    stamped.extend(
        (stamp_ns, prompt_topic, serialize(make_string(text), STRING)) for stamp_ns, text in prompts
    )
    stamped.sort(key=lambda item: item[0])
    with BagWriter(path, storage) as writer:
        writer.add_topic(image_topic, IMAGE)
        if prompts:
            writer.add_topic(prompt_topic, STRING)
        for stamp_ns, topic, cdr in stamped:
            writer.write(topic, stamp_ns, cdr)
    return Path(path)
