"""The SEEM node without middleware: serialized messages in, serialized messages out.

Adapters (the rclpy node in ``node``, the offline bag tool) are byte pipes. They subscribe to
:data:`INPUTS`, hand every message to :meth:`NodeCore.handle` as ``(input key, CDR bytes)``,
serve :data:`SERVICES` through :meth:`NodeCore.handle_service`, and publish what the core
emits through their ``publish(output key, ROS type, CDR bytes)`` callback on :data:`OUTPUTS`.
So every adapter behaves the same: the behaviour lives here.

Inside: callbacks decode and validate (a bad input is logged once, counted by name, and
dropped; the node keeps serving), prompts go into a :class:`PromptInbox`, frames into a
:class:`LatestFrameWorker` (one slot: a frame waiting for the model is replaced by a newer
one and counted as dropped). The worker thread applies the prompts, segments the frame with
the :class:`PromptSession`, and publishes detections, the instance mask, the overlay.

Outputs carry the input image's header (stamp and frame id). In ``seem/instance_mask``
(mono16) pixel value ``k`` means ``detections[k - 1]`` and 0 means no instance.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from seem_ros.postprocess import GenericSettings
from seem_ros.prompts import Box, ClassNames, MaskPrompt, PromptError, ReferringText
from seem_ros.results import SegmentationResult, paint_instance_ids
from seem_ros.ros import messages
from seem_ros.ros.diagnostics import (
    Counters,
    PerformanceMeter,
    ProblemReporter,
    diagnostics_message,
)
from seem_ros.ros.image_codec import (
    SUPPORTED_ENCODINGS,
    ImageFormatError,
    compressed_msg_to_rgb,
    image_msg_to_rgb,
    mono8_msg_to_mask,
    mono16_to_image_msg,
    rgb_to_image_msg,
)
from seem_ros.ros.messages import DiagnosticLevel, MessageError
from seem_ros.ros.params import NodeParams, ParamError, param_specs
from seem_ros.ros.projection import (
    CameraModel,
    ProjectionError,
    TransformLookup,
    point_in_camera_frame,
)
from seem_ros.ros.prompt_inbox import Click, LabelledBox, PromptInbox
from seem_ros.ros.prompt_session import (
    MAX_PROMPTED_OBJECTS,
    PromptSession,
    TrackedSession,
    UntrackedSession,
)
from seem_ros.ros.worker import LatestFrameWorker
from seem_ros.segmenter import Segmenter
from seem_ros.tracking import Tracker
from seem_ros.visualize import draw_overlay

LOG = logging.getLogger("seem_ros.node")
TRIGGER = "std_srvs/srv/Trigger"
OVERLAY_COLOURS = 256

Publish = Callable[[str, str, bytes], None]
"""``publish(output key, ROS type, CDR bytes)``, provided by the adapter."""
LabelsChanged = Callable[[bytes], None]
"""``on_labels(serialized vision_msgs/LabelInfo)``: the standing class names changed."""


@dataclass(frozen=True)
class Endpoint:
    """A topic or service of the node.

    ``key`` is how the core names it, ``name`` its default ROS name (relative names resolve in
    the node's namespace, ``~/`` under the node) and ``sensor`` marks camera streams, which
    are subscribed with the ``qos_reliability`` parameter.
    """

    key: str
    name: str
    ros_type: str
    sensor: bool = False


INPUTS: tuple[Endpoint, ...] = (
    Endpoint("image", "image", messages.IMAGE, sensor=True),
    Endpoint("image/compressed", "image/compressed", messages.COMPRESSED_IMAGE, sensor=True),
    Endpoint("camera_info", "camera_info", messages.CAMERA_INFO, sensor=True),
    Endpoint("prompt/classes", "prompt/classes", messages.STRING),
    Endpoint("prompt/refer", "prompt/refer", messages.STRING),
    Endpoint("clicked_point", "/clicked_point", messages.POINT_STAMPED),
    # rqt_image_view publishes clicks on "<image topic>_mouse_left": adapters derive the name.
    Endpoint("image_mouse_left", "image_mouse_left", messages.POINT),
    Endpoint("prompt/point", "prompt/point", messages.POINT_STAMPED),
    Endpoint("prompt/boxes", "prompt/boxes", messages.DETECTION_2D_ARRAY),
    Endpoint("prompt/mask", "prompt/mask", messages.IMAGE),
)
OUTPUTS: tuple[Endpoint, ...] = (
    Endpoint("detections", "seem/detections", messages.DETECTION_2D_ARRAY),
    Endpoint("instance_mask", "seem/instance_mask", messages.IMAGE),
    Endpoint("overlay", "seem/overlay", messages.IMAGE),
    Endpoint("diagnostics", "diagnostics", messages.DIAGNOSTIC_ARRAY),
)
SERVICES: tuple[Endpoint, ...] = (
    Endpoint("reset", "~/reset", TRIGGER),
    Endpoint("clear_clicks", "~/clear_clicks", TRIGGER),
)


def active_inputs(params: NodeParams) -> tuple[Endpoint, ...]:
    """The inputs to subscribe to: ``image`` or ``image/compressed`` (``use_compressed``)."""
    skip = "image" if params.use_compressed else "image/compressed"
    return tuple(endpoint for endpoint in INPUTS if endpoint.key != skip)


class OutputMessage(NamedTuple):
    """One message the core emitted."""

    key: str
    ros_type: str
    cdr: bytes


@dataclass
class _Frame:
    rgb: np.ndarray
    header: Any
    received_s: float  # monotonic clock, for the latency


class NodeCore:
    """Frames and prompts in, segmentation out, for one node.

    Args:
        segmenter: The loaded model (see :func:`seem_ros.ros.pipeline.load_segmenter_for`).
        params: Node parameters.
        publish: Adapter callback for every output message.
        transform_lookup: TF for ``/clicked_point`` in frames other than the camera's.
        clock_ns: Time for diagnostics stamps (rclpy passes the node's clock, for sim time).
        on_labels: Called with a serialized ``vision_msgs/LabelInfo`` (see :meth:`label_info`)
            now and whenever the standing class names or the score threshold change; the
            node publishes it latched beside the instance mask.
        threaded: True (a node): inference on a worker thread, latest frame only, and
            diagnostics every ``diagnostics_period``. False (a bag, a benchmark): each frame is
            segmented inside :meth:`handle`, none is dropped, and diagnostics are published
            only by :meth:`publish_diagnostics`.
    """

    def __init__(
        self,
        segmenter: Segmenter,
        params: NodeParams,
        publish: Publish,
        *,
        transform_lookup: TransformLookup | None = None,
        threaded: bool = True,
        clock_ns: Callable[[], int] = time.time_ns,
        on_labels: LabelsChanged | None = None,
    ) -> None:
        self.segmenter = segmenter
        self.params = params
        self._publish = publish
        self.transform_lookup = transform_lookup
        self._clock_ns = clock_ns
        self.counters = Counters()
        self._reporter = ProblemReporter(self.counters, LOG)
        self.meter = PerformanceMeter()
        self._lock = threading.Lock()
        self._image_hw: tuple[int, int] | None = None
        self._camera: CameraModel | None = None
        self._last_error: str | None = None
        self._object_count = 0
        self._capture: list[OutputMessage] | None = None
        self.inbox = PromptInbox(max_clicks=params.max_clicks, on_drop=self._reporter.report)
        self.session = self._make_session(params)
        self._on_labels = on_labels
        self._label_names: tuple[str, ...] = ()
        self._set_standing_classes(self._standing_classes(params.classes))
        self._handlers: dict[str, Callable[[bytes, float], None]] = {
            "image": self._on_image,
            "image/compressed": self._on_compressed_image,
            "camera_info": self._on_camera_info,
            "prompt/classes": self._on_classes,
            "prompt/refer": self._on_refer,
            "clicked_point": self._on_clicked_point,
            "image_mouse_left": self._on_mouse_left,
            "prompt/point": self._on_pixel_point,
            "prompt/boxes": self._on_boxes,
            "prompt/mask": self._on_mask,
        }
        self.worker: LatestFrameWorker[_Frame] = LatestFrameWorker(
            self._process, threaded=threaded, on_error=self._on_processing_error
        )
        self._closed = threading.Event()
        self._diagnostics_thread: threading.Thread | None = None
        if threaded:
            self._diagnostics_thread = threading.Thread(
                target=self._diagnostics_loop, name="seem-diagnostics", daemon=True
            )
            self._diagnostics_thread.start()

    # ------------------------------------------------------------------ setup
    def _make_session(self, params: NodeParams) -> PromptSession:
        if not params.tracking:
            return UntrackedSession(self.segmenter, max_clicks=params.max_clicks)
        tracker = Tracker(
            self.segmenter,
            ttl_frames=params.tracking_ttl,
            max_tracks=params.max_instances + MAX_PROMPTED_OBJECTS,
        )
        return TrackedSession(tracker, max_clicks=params.max_clicks)

    def _set_standing_classes(self, classes: ClassNames | None, *, reset: bool = True) -> None:
        """Replace the standing class names (``reset``: and forget every other prompt)."""
        if reset:
            self.inbox.reset(classes)
        else:
            self.inbox.set_classes(classes)
        self._label_names = classes.names if classes is not None else ()
        self._labels_changed()

    def _labels_changed(self) -> None:
        if self._on_labels is not None:
            self._on_labels(messages.serialize(self.label_info()))

    def label_info(self, stamp_ns: int | None = None) -> Any:
        """``vision_msgs/LabelInfo`` of the standing class names (class ``k + 1`` is the
        ``k``-th name; detections carry the name itself as ``class_id``) and the score
        threshold."""
        stamp = self._clock_ns() if stamp_ns is None else stamp_ns
        return messages.make_label_info(
            messages.make_header(stamp, ""), self._label_names, self.params.score_threshold
        )

    def _standing_classes(self, text: str) -> ClassNames | None:
        """The ``classes`` parameter, else the model card's vocabulary, else none.

        Raises:
            ParamError: ``text`` holds separators but no class name.
        """
        if text.strip():
            try:
                return ClassNames.parse(text)
            except PromptError as error:
                raise ParamError(f"parameter 'classes': {error}") from error
        vocabulary = tuple(self.segmenter.card.vocabulary or ())
        return ClassNames(vocabulary) if vocabulary else None

    # ------------------------------------------------------------------ inputs
    def handle(self, key: str, cdr: bytes | bytearray | memoryview) -> None:
        """Take one serialized message that arrived on input ``key`` (see :data:`INPUTS`).

        Never raises for bad input: problems are logged and counted.

        Raises:
            KeyError: ``key`` is not an input (an adapter bug).
        """
        handler = self._handlers.get(key)
        if handler is None:
            raise KeyError(f"unknown input {key!r}; inputs are {sorted(self._handlers)}")
        handler(bytes(cdr) if not isinstance(cdr, bytes) else cdr, time.monotonic())

    def feed(self, key: str, cdr: bytes) -> list[OutputMessage]:
        """:meth:`handle` for a core built with ``threaded=False``: returns what it published.

        Raises:
            RuntimeError: The core is threaded (outputs would arrive later, on the worker).
        """
        if self.worker.threaded:
            raise RuntimeError("feed() needs a core built with threaded=False")
        self._capture = []
        try:
            self.handle(key, cdr)
            return self._capture
        finally:
            self._capture = None

    def _report(self, problem: str, message: str) -> None:
        self._reporter.report(problem, message)

    def _decode(self, cdr: bytes, ros_type: str, key: str) -> Any | None:
        try:
            return messages.deserialize(cdr, ros_type)
        except MessageError as error:
            self._report("malformed_message", f"{key}: {error}")
            return None

    def _on_image(self, cdr: bytes, received_s: float) -> None:
        msg = self._decode(cdr, messages.IMAGE, "image")
        if msg is None:
            return
        problem = self._image_problem(msg)
        if problem is not None:
            self._report(*problem)
            return
        try:
            rgb = image_msg_to_rgb(msg, max_pixels=self.params.max_image_pixels)
        except ImageFormatError as error:
            self._report("image_layout_mismatch", f"image rejected: {error}")
            return
        self._submit(_Frame(rgb, msg.header, received_s))

    def _image_problem(self, msg: Any) -> tuple[str, str] | None:
        """(counter, message) for an image that cannot be used at all, before converting it."""
        width, height, encoding = int(msg.width), int(msg.height), str(msg.encoding)
        if encoding not in SUPPORTED_ENCODINGS:
            return (
                "unsupported_encoding",
                f"image rejected: encoding {encoding!r} is not supported; "
                f"use one of {sorted(SUPPORTED_ENCODINGS)}",
            )
        if width == 0 or height == 0 or len(msg.data) == 0:
            return (
                "empty_image",
                f"image rejected: it is empty ({width}x{height}, {len(msg.data)} bytes)",
            )
        if width * height > self.params.max_image_pixels:
            return (
                "image_too_large",
                f"image rejected: {width}x{height} exceeds max_image_pixels = "
                f"{self.params.max_image_pixels}",
            )
        return None

    def _on_compressed_image(self, cdr: bytes, received_s: float) -> None:
        msg = self._decode(cdr, messages.COMPRESSED_IMAGE, "image/compressed")
        if msg is None:
            return
        if len(msg.data) == 0:
            self._report("empty_image", "compressed image rejected: it holds no data")
            return
        try:
            rgb = compressed_msg_to_rgb(msg, max_pixels=self.params.max_image_pixels)
        except ImageFormatError as error:
            self._report("bad_compressed_image", f"compressed image rejected: {error}")
            return
        self._submit(_Frame(rgb, msg.header, received_s))

    def _submit(self, frame: _Frame) -> None:
        with self._lock:
            self._image_hw = (int(frame.rgb.shape[0]), int(frame.rgb.shape[1]))
        self.counters.increment("frames_received")
        if not self.worker.submit(frame):
            self._report(
                "frames_dropped",
                "frame dropped: a newer one arrived while the model was busy (latest frame only)",
            )

    def _on_camera_info(self, cdr: bytes, received_s: float) -> None:
        msg = self._decode(cdr, messages.CAMERA_INFO, "camera_info")
        if msg is None:
            return
        try:
            camera = CameraModel.from_camera_info(msg)
        except ProjectionError as error:
            self._report("bad_camera_info", f"camera_info rejected: {error}")
            return
        with self._lock:
            self._camera = camera

    def _on_classes(self, cdr: bytes, received_s: float) -> None:
        msg = self._decode(cdr, messages.STRING, "prompt/classes")
        if msg is None:
            return
        try:
            classes = ClassNames.parse(msg.data)
        except PromptError as error:
            self._report("bad_classes", f"prompt/classes rejected: {error}")
            return
        self._set_standing_classes(classes, reset=False)

    def _on_refer(self, cdr: bytes, received_s: float) -> None:
        msg = self._decode(cdr, messages.STRING, "prompt/refer")
        if msg is None:
            return
        try:
            refer = ReferringText(msg.data)
        except PromptError as error:
            self._report("bad_refer", f"prompt/refer rejected: {error}")
            return
        self.inbox.set_refer(refer)

    def _current_image_hw(self, what: str, problem: str) -> tuple[int, int] | None:
        """The size of the newest image, or None (reported as ``problem``) before the first."""
        with self._lock:
            hw = self._image_hw
        if hw is None:
            self._report(problem, f"{what} rejected: no image has arrived yet to apply it to")
        return hw

    def _add_pixel_click(self, x: float, y: float, positive: bool, what: str) -> None:
        if not (np.isfinite(x) and np.isfinite(y)):
            self._report("click_not_finite", f"{what} rejected: ({x}, {y}) is not finite")
            return
        hw = self._current_image_hw(what, "click_before_image")
        if hw is None:
            return
        if not (0.0 <= x <= hw[1] and 0.0 <= y <= hw[0]):
            self._report(
                "click_outside_image",
                f"{what} rejected: ({x:g}, {y:g}) lies outside the {hw[1]}x{hw[0]} image",
            )
            return
        self.inbox.add_click(Click(float(x), float(y), positive))

    def _on_clicked_point(self, cdr: bytes, received_s: float) -> None:
        msg = self._decode(cdr, messages.POINT_STAMPED, "/clicked_point")
        if msg is None:
            return
        point = np.array([msg.point.x, msg.point.y, msg.point.z], dtype=np.float64)
        if not np.all(np.isfinite(point)):
            self._report(
                "click_not_finite", f"/clicked_point rejected: {point.tolist()} is not finite"
            )
            return
        with self._lock:
            camera = self._camera
        if camera is None:
            self._report(
                "click_before_camera_info",
                "/clicked_point rejected: no camera_info has arrived yet to project it with",
            )
            return
        hw = self._current_image_hw("/clicked_point", "click_before_image")
        if hw is None:
            return
        if (camera.height, camera.width) != hw:
            self._report(
                "camera_info_mismatch",
                f"/clicked_point rejected: camera_info is {camera.width}x{camera.height} but the "
                f"image is {hw[1]}x{hw[0]}",
            )
            return
        try:
            in_camera = point_in_camera_frame(
                point,
                str(msg.header.frame_id),
                messages.ns_from_stamp(msg.header.stamp),
                camera.frame_id,
                self.transform_lookup,
            )
            x, y = camera.project(in_camera, rectified=self.params.rectified_image)
        except ProjectionError as error:
            self._report(f"click_{error.reason}", f"/clicked_point rejected: {error}")
            return
        self.inbox.add_click(Click(x, y, True))

    def _on_mouse_left(self, cdr: bytes, received_s: float) -> None:
        msg = self._decode(cdr, messages.POINT, "image_mouse_left")
        if msg is None:
            return
        # rqt_image_view sends the clicked pixel's column and row; prompts use continuous
        # coordinates where that pixel's centre is at +0.5.
        self._add_pixel_click(msg.x + 0.5, msg.y + 0.5, True, "image_mouse_left click")

    def _on_pixel_point(self, cdr: bytes, received_s: float) -> None:
        msg = self._decode(cdr, messages.POINT_STAMPED, "prompt/point")
        if msg is None:
            return
        label = float(msg.point.z)
        if label not in (0.0, 1.0):
            self._report(
                "bad_click_label",
                f"prompt/point rejected: z must be 1 (positive) or 0 (negative), got {label}",
            )
            return
        self._add_pixel_click(msg.point.x, msg.point.y, label == 1.0, "prompt/point click")

    def _on_boxes(self, cdr: bytes, received_s: float) -> None:
        msg = self._decode(cdr, messages.DETECTION_2D_ARRAY, "prompt/boxes")
        if msg is None:
            return
        hw = self._current_image_hw("prompt/boxes", "prompt_before_image")
        if hw is None:
            return
        boxes = []
        for index, detection in enumerate(msg.detections):
            try:
                boxes.append(_labelled_box(detection, hw))
            except PromptError as error:
                self._report("bad_box", f"prompt/boxes detection {index} rejected: {error}")
        self.inbox.set_boxes(boxes)

    def _on_mask(self, cdr: bytes, received_s: float) -> None:
        msg = self._decode(cdr, messages.IMAGE, "prompt/mask")
        if msg is None:
            return
        hw = self._current_image_hw("prompt/mask", "prompt_before_image")
        if hw is None:
            return
        try:
            mask = MaskPrompt(mono8_msg_to_mask(msg, max_pixels=self.params.max_image_pixels))
            mask.validate(hw)
        except (ImageFormatError, PromptError) as error:
            self._report("bad_mask", f"prompt/mask rejected: {error}")
            return
        self.inbox.add_mask(mask)

    # ------------------------------------------------------------------ services
    def reset(self) -> str:
        """Forget prompts and tracks; the ``classes`` parameter (or vocabulary) stands again."""
        self._set_standing_classes(self._standing_classes(self.params.classes))
        return "prompts and tracks cleared; takes effect with the next frame"

    def clear_clicks(self) -> str:
        self.inbox.clear_clicks()
        return "clicks cleared; takes effect with the next frame"

    def handle_service(self, key: str, request_cdr: bytes) -> bytes:
        """Answer a serialized ``std_srvs/Trigger`` request for service ``key``.

        Raises:
            KeyError: ``key`` is not a service of the node (an adapter bug).
        """
        actions = {"reset": self.reset, "clear_clicks": self.clear_clicks}
        if key not in actions:
            raise KeyError(f"unknown service {key!r}; services are {sorted(actions)}")
        messages.deserialize(request_cdr, f"{TRIGGER}_Request")
        reply = actions[key]()
        LOG.info("~/%s: %s", key, reply)
        response = messages.TYPESTORE.types[f"{TRIGGER}_Response"](success=True, message=reply)
        return messages.serialize(response)

    # ------------------------------------------------------------------ parameters
    def update_params(self, **changes: object) -> NodeParams:
        """Change parameters at run time; only those not ``read_only`` may change.

        Raises:
            ParamError: Unknown or read-only name, or an invalid value.
        """
        read_only = {spec.name for spec in param_specs() if spec.read_only}
        fixed = sorted(set(changes) & read_only)
        if fixed:
            raise ParamError(f"parameter(s) {fixed} only take effect at start: restart the node")
        params = self.params.replace(**changes)
        classes = self._standing_classes(params.classes) if "classes" in changes else None
        if "score_threshold" in changes or "max_instances" in changes:
            settings = self.segmenter.settings
            self.segmenter.settings = GenericSettings(
                score_threshold=params.score_threshold,
                max_instances=params.max_instances,
                overlap_keep=settings.overlap_keep,
                min_area=settings.min_area,
            )
        self.inbox.max_clicks = params.max_clicks
        self.session.max_clicks = params.max_clicks
        self.params = params
        if "classes" in changes:
            self._set_standing_classes(classes, reset=False)
        elif "score_threshold" in changes:
            self._labels_changed()
        return params

    # ------------------------------------------------------------------ worker
    def _process(self, frame: _Frame) -> None:
        hw = (int(frame.rgb.shape[0]), int(frame.rgb.shape[1]))
        self.session.apply(self.inbox.drain(), hw, self._report)
        stamp_ns = messages.ns_from_stamp(frame.header.stamp)
        result = self.session.segment(frame.rgb, stamp_ns, self._report)
        self._object_count = self.session.object_count
        self._publish_result(frame, result)
        self.meter.record(time.monotonic() - frame.received_s)
        self.counters.increment("frames_processed")
        self._last_error = None

    def _on_processing_error(self, error: BaseException) -> None:
        self._last_error = f"{type(error).__name__}: {error}"
        LOG.exception("segmenting a frame failed", exc_info=error)
        self.counters.increment("processing_errors")

    def _publish_result(self, frame: _Frame, result: SegmentationResult) -> None:
        instances = [instance for instance in result.instances if instance.area > 0]
        ids = result.instance_ids
        if len(instances) != len(result.instances):
            ids = paint_instance_ids(instances, result.image_hw)
        header = frame.header
        detections = messages.make_detection_array(
            header, [(i.label, i.score, i.box, i.track_id) for i in instances]
        )
        self._emit("detections", messages.serialize(detections))
        self._emit("instance_mask", messages.serialize(mono16_to_image_msg(ids, header)))
        if self.params.publish_overlay:
            shown = SegmentationResult(instances, ids, result.task, result.classes)
            keys = [
                (i.track_id if i.track_id is not None else index) % OVERLAY_COLOURS
                for index, i in enumerate(instances)
            ]
            overlay = draw_overlay(frame.rgb, shown, colour_keys=keys)
            self._emit("overlay", messages.serialize(rgb_to_image_msg(overlay, header)))

    def _emit(self, key: str, cdr: bytes) -> None:
        ros_type = _OUTPUT_TYPES[key]
        if self._capture is not None:
            self._capture.append(OutputMessage(key, ros_type, cdr))
        self._publish(key, ros_type, cdr)

    # ------------------------------------------------------------------ diagnostics
    def diagnostics(self, stamp_ns: int | None = None) -> Any:
        """The node's ``diagnostic_msgs/DiagnosticArray`` now."""
        counts = self.counters.snapshot()
        received = counts.pop("frames_received", 0)
        processed = counts.pop("frames_processed", 0)
        dropped = counts.pop("frames_dropped", 0)
        if self._last_error is not None:
            level, summary = DiagnosticLevel.ERROR, f"segmentation failing: {self._last_error}"
        elif received == 0:
            level, summary = DiagnosticLevel.WARN, "waiting for images"
        else:
            level, summary = DiagnosticLevel.OK, "segmenting"
        values: dict[str, object] = {
            **self.meter.summary(),
            "frames_received": received,
            "frames_processed": processed,
            "frames_dropped": dropped,
            "backend": self.segmenter.engine.describe(),
            "model": self.segmenter.card.config.name,
            "model_trained": self.segmenter.card.trained,
            "tracking": self.params.tracking,
            "objects": self._object_count,
            **counts,
        }
        stamp = self._clock_ns() if stamp_ns is None else stamp_ns
        return diagnostics_message(stamp, level=level, message=summary, values=values)

    def publish_diagnostics(self, stamp_ns: int | None = None) -> None:
        self._emit("diagnostics", messages.serialize(self.diagnostics(stamp_ns)))

    def _diagnostics_loop(self) -> None:
        while not self._closed.wait(self.params.diagnostics_period):
            try:
                self.publish_diagnostics()
            except Exception:  # a publisher closing under us at shutdown
                if not self._closed.is_set():
                    LOG.exception("publishing diagnostics failed")

    # ------------------------------------------------------------------ lifecycle
    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Block until no frame is waiting or being segmented."""
        return self.worker.wait_idle(timeout_s)

    def close(self) -> None:
        """Stop the worker and the diagnostics thread. Idempotent."""
        self._closed.set()
        self.worker.stop()
        if self._diagnostics_thread is not None:
            self._diagnostics_thread.join(timeout=5.0)


_OUTPUT_TYPES = {endpoint.key: endpoint.ros_type for endpoint in OUTPUTS}


def _labelled_box(detection: Any, image_hw: tuple[int, int]) -> LabelledBox:
    """A Detection2D as a box clipped to the image, labelled with its best hypothesis.

    Raises:
        PromptError: The box is not finite, degenerate, or entirely outside the image.
    """
    bbox = detection.bbox
    cx, cy = float(bbox.center.position.x), float(bbox.center.position.y)
    half_w, half_h = float(bbox.size_x) / 2.0, float(bbox.size_y) / 2.0
    height, width = image_hw
    corners = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    if not all(np.isfinite(corners)):
        raise PromptError(f"box {corners} is not finite")
    x0, y0 = max(corners[0], 0.0), max(corners[1], 0.0)
    x1, y1 = min(corners[2], float(width)), min(corners[3], float(height))
    if x1 - x0 < 1.0 or y1 - y0 < 1.0:
        raise PromptError(
            f"box (x0={corners[0]:g}, y0={corners[1]:g}, x1={corners[2]:g}, y1={corners[3]:g}) "
            f"is degenerate or outside the {width}x{height} image"
        )
    results = list(detection.results)
    best = max(results, key=lambda r: float(r.hypothesis.score)) if results else None
    label = str(best.hypothesis.class_id).strip() if best is not None else ""
    return LabelledBox(Box(x0, y0, x1, y1), label or "object")
