"""Offline: the node core over a recorded rosbag2, writing the input plus the node's outputs.

:func:`process_bag` replays a bag (sqlite3 or MCAP, a directory or a bare file) through a
:class:`~seem_ros.ros.node_core.NodeCore` built with ``threaded=False``, so every frame is
segmented, in order, with the prompts recorded before it: the bag's topics are mapped onto the
core's inputs (:func:`plan_topics`) and fed in bag-time order, exactly as a live node would
have received them. The new bag holds every input message unchanged plus ``seem/detections``,
``seem/instance_mask``, ``seem/overlay`` (when enabled) and ``diagnostics``; each output is
logged at its frame's bag time and carries the frame's header.

``/tf`` and ``/tf_static`` in the bag feed a :class:`~seem_ros.ros.tf_buffer.TfBuffer`, so
``/clicked_point`` in another frame than the camera's is projected as the live node would.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from seem_ros.ros import messages
from seem_ros.ros.bag_io import BagMessage, BagReader, BagWriter, Storage
from seem_ros.ros.node_core import INPUTS, OUTPUTS, NodeCore, OutputMessage
from seem_ros.ros.params import NodeParams
from seem_ros.ros.tf_buffer import TfBuffer
from seem_ros.segmenter import Segmenter

LOG = logging.getLogger(__name__)
SAMPLE_BAG = Path(__file__).resolve().parents[1] / "data" / "samples" / "sample_scene.mcap"
"""The shipped sample: a short procedural clip with a class prompt and, later, a click."""

IMAGE_KEYS = {messages.IMAGE: "image", messages.COMPRESSED_IMAGE: "image/compressed"}
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
TF_TOPICS = {"/tf": False, "/tf_static": True}  # topic -> static
# Inputs matched by topic name; the image and rqt's "<image>_mouse_left" follow the image topic.
_NAMED_INPUTS = tuple(e for e in INPUTS if e.key not in ("image", "image/compressed"))
# A bag that already holds these (an earlier run's output) gets this run's instead.
_REPLACED_OUTPUTS = ("detections", "instance_mask", "overlay")


class BagProcessingError(ValueError):
    """The bag cannot be processed as asked; the message says why and what to do."""


@dataclass(frozen=True)
class TopicPlan:
    """How a bag's topics meet the core.

    Attributes:
        image_topic: The camera topic that is segmented.
        inputs: ``{bag topic: core input key}`` for every topic fed to the core.
        outputs: ``{core output key: bag topic}`` for what the core publishes.
        tf_topics: ``{bag topic: static}`` for the TF topics in the bag.
    """

    image_topic: str
    inputs: dict[str, str]
    outputs: dict[str, str]
    tf_topics: dict[str, bool]


@dataclass(frozen=True)
class BagSummary:
    """What :func:`process_bag` did."""

    plan: TopicPlan
    output_path: Path
    messages_read: int
    messages_written: int
    frames: int
    frames_segmented: int
    detections: int
    seconds: float

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.seconds / self.frames_segmented if self.frames_segmented else 0.0

    def line(self) -> str:
        failed = self.frames - self.frames_segmented
        return (
            f"{self.frames} frames ({failed} not segmented), {self.detections} detections, "
            f"{self.ms_per_frame:.1f} ms/frame; wrote {self.messages_written} messages "
            f"to {self.output_path}"
        )


def _namespace_of(topic: str) -> list[str]:
    return topic.strip("/").split("/")[:-1]


def _shared_depth(topic: str, other: str) -> int:
    """How many leading namespace levels two topic names share."""
    depth = 0
    for a, b in zip(_namespace_of(topic), _namespace_of(other)):
        if a != b:
            break
        depth += 1
    return depth


def _closest(candidates: list[str], image_topic: str, what: str) -> str | None:
    """The candidate sharing the most namespace with the image topic; None if there is none.

    Raises:
        BagProcessingError: Several candidates are equally close.
    """
    if not candidates:
        return None
    ranked = sorted(candidates, key=lambda topic: -_shared_depth(topic, image_topic))
    best = _shared_depth(ranked[0], image_topic)
    tied = [topic for topic in ranked if _shared_depth(topic, image_topic) == best]
    if len(tied) > 1:
        raise BagProcessingError(
            f"several bag topics could be {what}: {sorted(tied)}; "
            "keep one (e.g. filter the bag) so the prompts are unambiguous"
        )
    return ranked[0]


def _is_output_topic(topic: str) -> bool:
    return any(topic.endswith(f"/{e.name}") for e in OUTPUTS if e.key in _REPLACED_OUTPUTS)


def _choose_image_topic(topics: Mapping[str, str], requested: str | None) -> str:
    if requested is not None:
        if requested not in topics:
            raise BagProcessingError(
                f"image topic {requested!r} is not in the bag; it has {sorted(topics)}"
            )
        if topics[requested] not in IMAGE_KEYS:
            raise BagProcessingError(
                f"image topic {requested!r} is a {topics[requested]}, not a "
                f"{' or '.join(IMAGE_KEYS)}"
            )
        return requested
    mask_suffix = "/" + next(e.name for e in INPUTS if e.key == "prompt/mask")
    candidates = sorted(
        topic
        for topic, ros_type in topics.items()
        if ros_type in IMAGE_KEYS
        and not topic.endswith(mask_suffix)
        and not _is_output_topic(topic)
    )
    if not candidates:
        raise BagProcessingError(
            f"the bag has no {' or '.join(IMAGE_KEYS)} topic to segment; "
            f"its topics are {dict(sorted(topics.items()))}"
        )
    if len(candidates) > 1:
        raise BagProcessingError(
            f"the bag has several image topics {candidates}: choose one with --image-topic"
        )
    return candidates[0]


def output_topics(namespace: str = "/") -> dict[str, str]:
    """``{core output key: topic}`` of the node's outputs in ``namespace``."""
    if not namespace.startswith("/"):
        raise BagProcessingError(f"namespace must be absolute (start with '/'), got {namespace!r}")
    prefix = namespace.rstrip("/")
    return {e.key: f"{prefix}/{e.name}" for e in OUTPUTS}


def plan_topics(
    topics: Mapping[str, str], image_topic: str | None = None, *, namespace: str = "/"
) -> TopicPlan:
    """Map a bag's topics (``{name: ROS type}``) onto the core's inputs.

    The image topic is ``image_topic``, or the only ``sensor_msgs/Image`` or
    ``CompressedImage`` topic that is neither a ``prompt/mask`` nor an earlier run's output.
    Each other input is the topic of its type whose name ends like the input's default name
    (``/prompt/classes``, ``/robot/prompt/classes``, ``/camera/camera_info``,
    ``/clicked_point``); with several, the one sharing most namespace with the image topic.
    rqt_image_view clicks are ``<image topic>_mouse_left``.

    Raises:
        BagProcessingError: No (or an ambiguous) image topic, or ambiguous prompt topics.
    """
    image = _choose_image_topic(topics, image_topic)
    inputs = {image: IMAGE_KEYS[topics[image]]}
    mouse_topics = {f"{image}_mouse_left", f"{image.removesuffix('/compressed')}_mouse_left"}
    for endpoint in _NAMED_INPUTS:
        if endpoint.key == "image_mouse_left":
            candidates = [t for t in mouse_topics if topics.get(t) == endpoint.ros_type]
        else:
            suffix = "/" + endpoint.name.lstrip("/")
            candidates = [
                topic
                for topic, ros_type in topics.items()
                if ros_type == endpoint.ros_type and topic.endswith(suffix) and topic != image
            ]
        chosen = _closest(candidates, image, endpoint.key)
        if chosen is not None:
            inputs[chosen] = endpoint.key
    tf_topics = {t: static for t, static in TF_TOPICS.items() if topics.get(t) == TF_MESSAGE}
    return TopicPlan(image, inputs, output_topics(namespace), tf_topics)


class _OutputCounter:
    """Counts frames that came out segmented and the detections in them."""

    def __init__(self) -> None:
        self.frames = 0
        self.detections = 0

    def add(self, outputs: list[OutputMessage]) -> None:
        for output in outputs:
            if output.key == "detections":
                self.frames += 1
                array = messages.deserialize(output.cdr, output.ros_type)
                self.detections += len(array.detections)


def _declare_topics(
    writer: BagWriter, topics: Mapping[str, str], plan: TopicPlan, params: NodeParams
) -> set[str]:
    """Add the copied input topics and the output topics; return the input topics not copied."""
    replaced = {plan.outputs[key] for key in _REPLACED_OUTPUTS}
    skipped: set[str] = set()
    for topic, ros_type in sorted(topics.items()):
        if topic in replaced:
            LOG.warning("%s is in the input (an earlier run?): replaced by this run's", topic)
            skipped.add(topic)
            continue
        try:
            writer.add_topic(topic, ros_type)
        except messages.MessageError as error:
            LOG.warning("%s is not copied: %s", topic, error)
            skipped.add(topic)
    for endpoint in OUTPUTS:
        if endpoint.key == "overlay" and not params.publish_overlay:
            continue
        try:
            writer.add_topic(plan.outputs[endpoint.key], endpoint.ros_type)
        except ValueError as error:
            raise BagProcessingError(f"cannot add output topic: {error}") from error
    return skipped


def process_bag(
    input_path: str | Path,
    output_path: str | Path,
    segmenter: Segmenter,
    params: NodeParams,
    *,
    image_topic: str | None = None,
    storage: Storage = "mcap",
    namespace: str = "/",
    progress: bool = False,
) -> BagSummary:
    """Segment every frame of a bag with the node core; write the input plus the outputs.

    Args:
        input_path: rosbag2 directory, or a bare ``.mcap`` / ``.db3`` file.
        output_path: New bag directory (must not exist).
        segmenter: The loaded model.
        params: Node parameters (``classes`` stands from the first frame; prompt topics in
            the bag change the prompts from their time on).
        image_topic: The camera topic; default: the only image topic (see :func:`plan_topics`).
        storage: ``"mcap"`` or ``"sqlite3"`` for the output.
        namespace: Namespace of the output topics (``/seem/detections`` in ``/``).
        progress: Show a tqdm progress bar on stderr.

    Raises:
        BagProcessingError: Missing, unreadable or corrupt input, an existing output, or no
            usable image topic. A partly written output is removed.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.exists():
        raise BagProcessingError(f"input bag not found: {input_path}")
    if output_path.exists():
        raise BagProcessingError(f"output {output_path} exists; name a new path for the bag")
    try:
        reader = BagReader(input_path)
    except ValueError as error:
        raise BagProcessingError(str(error)) from error
    except FileNotFoundError as error:  # a directory without metadata.yaml
        raise BagProcessingError(f"{input_path} is not a rosbag2 bag: {error}") from error
    with reader:
        topics = reader.topics()
        plan = plan_topics(topics, image_topic, namespace=namespace)
        LOG.info(
            "segmenting %s; prompts from %s",
            plan.image_topic,
            {t: k for t, k in plan.inputs.items() if t != plan.image_topic} or "none",
        )
        try:
            return _replay(reader, output_path, segmenter, params, plan, storage, progress)
        except BaseException:
            shutil.rmtree(output_path, ignore_errors=True)
            raise


class _Replay:
    """One pass over a bag: copy each message, feed the core, write what it publishes."""

    def __init__(
        self, writer: BagWriter, segmenter: Segmenter, params: NodeParams, plan: TopicPlan
    ) -> None:
        self.writer = writer
        self.plan = plan
        self.tf = TfBuffer()
        self.core = NodeCore(
            segmenter, params, lambda *_: None, transform_lookup=self.tf.lookup, threaded=False
        )
        self.counter = _OutputCounter()
        self.frames = self.read = self.written = 0
        self._diagnostics_period_ns = int(params.diagnostics_period * 1e9)
        self._last_diagnostics_ns: int | None = None
        self._last_frame_ns: int | None = None

    def take(self, message: BagMessage, copy: bool) -> None:
        self.read += 1
        if copy:
            self._write(message.topic, message.timestamp_ns, message.cdr)
        static = self.plan.tf_topics.get(message.topic)
        if static is not None:
            _add_tf(self.tf, self.core, message.cdr, static=static)
        key = self.plan.inputs.get(message.topic)
        if key is None:
            return
        outputs = self.core.feed(key, message.cdr)
        if key in IMAGE_KEYS.values():
            self._after_frame(message.timestamp_ns, outputs)

    def _after_frame(self, frame_ns: int, outputs: list[OutputMessage]) -> None:
        self.frames += 1
        self._last_frame_ns = frame_ns
        self.counter.add(outputs)
        for output in outputs:
            self._write(self.plan.outputs[output.key], frame_ns, output.cdr)
        last = self._last_diagnostics_ns
        if last is None or frame_ns - last >= self._diagnostics_period_ns:
            self._write_diagnostics(frame_ns)

    def finish(self) -> None:
        """Diagnostics at the last frame (the final counts), then stop the core."""
        if self._last_frame_ns is not None and self._last_frame_ns != self._last_diagnostics_ns:
            self._write_diagnostics(self._last_frame_ns)
        self.core.close()

    def _write_diagnostics(self, stamp_ns: int) -> None:
        diagnostics = messages.serialize(self.core.diagnostics(stamp_ns))
        self._write(self.plan.outputs["diagnostics"], stamp_ns, diagnostics)
        self._last_diagnostics_ns = stamp_ns

    def _write(self, topic: str, stamp_ns: int, cdr: bytes) -> None:
        self.writer.write(topic, stamp_ns, cdr)
        self.written += 1


def _replay(
    reader: BagReader,
    output_path: Path,
    segmenter: Segmenter,
    params: NodeParams,
    plan: TopicPlan,
    storage: Storage,
    progress: bool,
) -> BagSummary:
    started = time.perf_counter()
    with BagWriter(output_path, storage) as writer:
        skipped = _declare_topics(writer, reader.topics(), plan, params)
        replay = _Replay(writer, segmenter, params, plan)
        stream = tqdm(
            _read_all(reader),
            total=reader.message_count,
            unit="msg",
            desc="seem-ros bag",
            disable=not progress,
        )
        try:
            for message in stream:
                replay.take(message, copy=message.topic not in skipped)
        finally:
            stream.close()
            replay.finish()
    return BagSummary(
        plan=plan,
        output_path=output_path,
        messages_read=replay.read,
        messages_written=replay.written,
        frames=replay.frames,
        frames_segmented=replay.counter.frames,
        detections=replay.counter.detections,
        seconds=time.perf_counter() - started,
    )


def _read_all(reader: BagReader) -> Iterator[BagMessage]:
    """The bag's messages in time order; a storage error becomes a BagProcessingError."""
    count = 0
    messages_in = reader.messages()
    while True:
        try:
            message = next(messages_in)
        except StopIteration:
            return
        except Exception as error:  # rosbags and sqlite3 raise many kinds on corrupt storage
            raise BagProcessingError(
                f"{reader.path} is corrupt: reading failed after {count} messages: "
                f"{type(error).__name__}: {error}"
            ) from error
        count += 1
        yield message


def _add_tf(tf: TfBuffer, core: NodeCore, cdr: bytes, *, static: bool) -> None:
    try:
        tf.add_message(messages.deserialize(cdr, TF_MESSAGE), static=static)
    except messages.MessageError as error:
        core.counters.increment("malformed_message")
        LOG.warning("%s: %s", "/tf_static" if static else "/tf", error)
