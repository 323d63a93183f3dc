"""The node's core runs an official-family model like our own: clicks, detector boxes and
class names become tracked detections with stable IDs (the same core the rclpy node wraps)."""

from __future__ import annotations

import numpy as np
from official_models import small_official_segmenter
from ros_payloads import HEIGHT, WIDTH, boxes_cdr, image_cdr, point_stamped_cdr, string_cdr

from seem_ros.ros import messages
from seem_ros.ros.node_core import NodeCore
from seem_ros.ros.params import NodeParams


def make_core(**params) -> NodeCore:
    settings = {"backend": "torch", **params}
    return NodeCore(
        small_official_segmenter(), NodeParams(**settings), lambda *_: None, threaded=False
    )


def outputs_of(core: NodeCore, stamp_ns: int) -> dict:
    return {
        o.key: messages.deserialize(o.cdr, o.ros_type)
        for o in core.feed("image", image_cdr(stamp_ns))
    }


def test_a_click_and_detector_boxes_become_tracks_with_stable_ids():
    core = make_core(score_threshold=0.0)
    core.feed("image", image_cdr(1_000))
    core.handle("prompt/point", point_stamped_cdr(40.0, 30.0, 1.0))
    core.handle("prompt/boxes", boxes_cdr(("mug", (5, 5, 50, 40))))
    frames = [outputs_of(core, stamp) for stamp in (2_000, 3_000)]
    ids = [sorted(d.id for d in frame["detections"].detections) for frame in frames]
    assert len(ids[0]) == 2 and ids[0] == ids[1]
    mask = np.frombuffer(frames[1]["instance_mask"].data, dtype="<u2").reshape(HEIGHT, WIDTH)
    assert mask.shape == (HEIGHT, WIDTH)


def test_class_names_from_the_text_topic_segment_every_frame():
    core = make_core(score_threshold=0.0, max_instances=5)
    core.handle("prompt/classes", string_cdr("mug; person"))
    frame = outputs_of(core, 1_000)
    labels = {d.results[0].hypothesis.class_id for d in frame["detections"].detections}
    assert labels <= {"mug", "person"}
