"""Specification of the middleware-free node core, its parameters, worker and diagnostics.

The core runs the random-init ``tiny`` model (no trained model is needed): tests assert on
structure (outputs, sizes, headers, counts, track IDs, counters), never on mask quality.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ros_payloads import (
    FRAME_ID,
    HEIGHT,
    WIDTH,
    boxes_cdr,
    camera_info_cdr,
    image_cdr,
    mask_cdr,
    mouse_cdr,
    point_stamped_cdr,
    raw_image_cdr,
    small_tiny_model,
    string_cdr,
)

from seem_ros.ros import messages
from seem_ros.ros.diagnostics import Counters, PerformanceMeter, ProblemReporter
from seem_ros.ros.node_core import NodeCore, OutputMessage
from seem_ros.ros.params import NodeParams, ParamError, load_params, param_specs
from seem_ros.ros.projection import transform_matrix
from seem_ros.ros.worker import LatestFrameWorker
from seem_ros.segmenter import Segmenter

REPO_ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def segmenter() -> Segmenter:
    return Segmenter(*small_tiny_model())


def make_core(segmenter: Segmenter, **params: Any) -> NodeCore:
    settings = {"backend": "torch", **params}
    return NodeCore(segmenter, NodeParams(**settings), lambda *_: None, threaded=False)


def pixel_point_cdr(x: float, y: float, label: float = 1.0) -> bytes:
    return point_stamped_cdr(x, y, label)


def clicked_point_cdr(x: float, y: float, z: float, frame_id: str = FRAME_ID) -> bytes:
    return point_stamped_cdr(x, y, z, frame_id)


def outputs_by_key(outputs: list[OutputMessage]) -> dict[str, Any]:
    return {o.key: messages.deserialize(o.cdr, o.ros_type) for o in outputs}


def detections(outputs: list[OutputMessage]) -> list[Any]:
    return list(outputs_by_key(outputs)["detections"].detections)


def frame_detections(core: NodeCore, stamp_ns: int = 1_000) -> list[Any]:
    return detections(core.feed("image", image_cdr(stamp_ns)))


def trigger_request() -> bytes:
    request = messages.TYPESTORE.types["std_srvs/srv/Trigger_Request"](
        structure_needs_at_least_one_member=0
    )
    return messages.serialize(request)


# ---------------------------------------------------------------- parameters
def test_shipped_config_holds_every_parameter_at_its_default() -> None:
    params = load_params(REPO_ROOT / "config" / "seem.yaml")
    assert params == NodeParams()
    text = (REPO_ROOT / "config" / "seem.yaml").read_text()
    assert all(f"    {spec.name}:" in text for spec in param_specs())


def test_every_parameter_is_described_and_numbers_have_ranges() -> None:
    for spec in param_specs():
        assert spec.description, spec.name
        if spec.value_type in (int, float):
            assert spec.minimum is not None and spec.maximum is not None, spec.name


def test_out_of_range_parameter_is_rejected_naming_it() -> None:
    with pytest.raises(ParamError, match=r"score_threshold.*<= 1"):
        NodeParams(score_threshold=1.5)


def test_frame_size_must_be_width_x_height() -> None:
    assert NodeParams(frame_size="640x480").frame_hw == (480, 640)
    assert NodeParams().frame_hw is None
    for bad in ("640", "640x", "wide", "8x8"):
        with pytest.raises(ParamError, match="frame_size"):
            NodeParams(frame_size=bad)


def test_parameter_of_the_wrong_type_is_rejected() -> None:
    with pytest.raises(ParamError, match=r"tracking.*must be a bool"):
        load_params(overrides={"tracking": "yes"})


def test_unknown_parameter_in_a_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "seem.yaml"
    path.write_text("seem_node:\n  ros__parameters:\n    score_treshold: 0.3\n")
    with pytest.raises(ParamError, match="score_treshold"):
        load_params(path)


def test_node_section_overrides_the_wildcard_section(tmp_path: Path) -> None:
    path = tmp_path / "seem.yaml"
    path.write_text(
        "/**:\n  ros__parameters:\n    max_instances: 7\n    classes: a\n"
        "seem_node:\n  ros__parameters:\n    classes: b; c\n"
    )
    params = load_params(path)
    assert (params.max_instances, params.classes) == (7, "b; c")


def test_missing_parameter_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ParamError, match="not found"):
        load_params(tmp_path / "nowhere.yaml")


# ---------------------------------------------------------------- worker
def test_worker_runs_only_the_newest_waiting_frame() -> None:
    started, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def process(item: int) -> None:
        started.set()
        release.wait(5)
        seen.append(item)

    worker: LatestFrameWorker[int] = LatestFrameWorker(process)
    worker.submit(0)
    assert started.wait(5)
    accepted = [worker.submit(item) for item in (1, 2, 3)]
    release.set()
    assert worker.wait_idle(5)
    worker.stop()
    assert seen == [0, 3]
    assert accepted == [True, False, False]
    assert worker.dropped == 2


def test_synchronous_worker_processes_every_frame_in_order() -> None:
    seen: list[int] = []
    worker: LatestFrameWorker[int] = LatestFrameWorker(seen.append, threaded=False)
    for item in range(5):
        worker.submit(item)
    assert seen == [0, 1, 2, 3, 4]
    assert worker.dropped == 0


def test_worker_survives_a_failing_frame() -> None:
    errors: list[BaseException] = []
    seen: list[int] = []

    def process(item: int) -> None:
        if item == 1:
            raise RuntimeError("boom")
        seen.append(item)

    worker: LatestFrameWorker[int] = LatestFrameWorker(process, on_error=errors.append)
    for item in (1, 2):
        worker.submit(item)
        assert worker.wait_idle(5)
    worker.stop()
    assert seen == [2]
    assert [str(e) for e in errors] == ["boom"]


# ---------------------------------------------------------------- diagnostics pieces
def test_repeated_problem_is_counted_every_time_but_logged_once_per_period(caplog) -> None:
    now = [0.0]
    counters = Counters()
    reporter = ProblemReporter(
        counters, logging.getLogger("test"), log_period_s=2.0, clock=lambda: now[0]
    )
    with caplog.at_level(logging.WARNING, logger="test"):
        for _ in range(5):
            reporter.report("bad_thing", "thing was bad")
        now[0] = 3.0
        reporter.report("bad_thing", "thing was bad")
    assert counters.get("bad_thing") == 6
    assert [r.getMessage() for r in caplog.records] == [
        "thing was bad [bad_thing]",
        "thing was bad [bad_thing] (4 more not logged)",
    ]


def test_performance_meter_reports_rate_and_latency_of_recent_frames() -> None:
    now = [0.0]
    meter = PerformanceMeter(window_s=5.0, clock=lambda: now[0])
    for _ in range(5):
        meter.record(0.02)
        now[0] += 0.1
    summary = meter.summary()
    assert summary["fps"] == pytest.approx(10.0)
    assert summary["latency_ms_mean"] == pytest.approx(20.0)


# ---------------------------------------------------------------- outputs
def test_frame_yields_detections_instance_mask_and_overlay_with_the_image_header(segmenter) -> None:
    core = make_core(segmenter)
    outputs = outputs_by_key(core.feed("image", image_cdr(1_234_000_000_567)))
    assert set(outputs) == {"detections", "instance_mask", "overlay"}
    for msg in outputs.values():
        assert messages.ns_from_stamp(msg.header.stamp) == 1_234_000_000_567
        assert msg.header.frame_id == FRAME_ID
    mask, overlay = outputs["instance_mask"], outputs["overlay"]
    assert (mask.encoding, mask.width, mask.height) == ("mono16", WIDTH, HEIGHT)
    assert (overlay.encoding, overlay.width, overlay.height) == ("rgb8", WIDTH, HEIGHT)


def test_overlay_is_not_published_when_switched_off(segmenter) -> None:
    core = make_core(segmenter, publish_overlay=False)
    assert {o.key for o in core.feed("image", image_cdr())} == {"detections", "instance_mask"}


def test_click_becomes_a_tracked_detection_whose_mask_pixels_are_its_index_plus_one(
    segmenter,
) -> None:
    core = make_core(segmenter)
    core.feed("image", image_cdr())
    core.handle("prompt/point", pixel_point_cdr(40.0, 30.0))
    outputs = outputs_by_key(core.feed("image", image_cdr(2_000)))
    found = list(outputs["detections"].detections)
    assert len(found) == 1 and found[0].id.isdigit()
    ids = np.frombuffer(outputs["instance_mask"].data, dtype="<u2").reshape(HEIGHT, WIDTH)
    rows, cols = np.nonzero(ids == 1)
    assert set(np.unique(ids)) <= {0, 1} and rows.size > 0
    box = found[0].bbox
    assert cols.min() >= box.center.position.x - box.size_x / 2
    assert cols.max() < box.center.position.x + box.size_x / 2


def test_track_id_stays_the_same_from_frame_to_frame(segmenter) -> None:
    core = make_core(segmenter)
    core.feed("image", image_cdr())
    core.handle("prompt/point", pixel_point_cdr(40.0, 30.0))
    ids = [[d.id for d in frame_detections(core, stamp)] for stamp in (2_000, 3_000, 4_000)]
    assert ids[0] == ids[1] == ids[2] and len(ids[0]) == 1


def test_each_detector_box_becomes_an_object_with_the_detectors_class(segmenter) -> None:
    core = make_core(segmenter)
    core.feed("image", image_cdr())
    core.handle("prompt/boxes", boxes_cdr(("mug", (5, 5, 50, 40)), ("person", (60, 20, 120, 90))))
    found = frame_detections(core, 2_000)
    assert sorted(d.results[0].hypothesis.class_id for d in found) == ["mug", "person"]
    assert len({d.id for d in found}) == 2


def test_detector_repeating_its_boxes_does_not_multiply_tracks(segmenter) -> None:
    core = make_core(segmenter)
    core.feed("image", image_cdr())
    for stamp in (2_000, 3_000, 4_000):
        core.handle("prompt/boxes", boxes_cdr(("mug", (5, 5, 50, 40))))
        core.feed("image", image_cdr(stamp))
    assert core.session.object_count == 1


def test_untracked_node_replaces_boxes_with_the_newest_detector_message(segmenter) -> None:
    core = make_core(segmenter, tracking=False)
    core.feed("image", image_cdr())
    core.handle("prompt/boxes", boxes_cdr(("mug", (5, 5, 50, 40)), ("cup", (60, 20, 120, 90))))
    core.feed("image", image_cdr(2_000))
    core.handle("prompt/boxes", boxes_cdr(("bowl", (10, 10, 60, 60))))
    found = frame_detections(core, 3_000)
    assert [(d.results[0].hypothesis.class_id, d.id) for d in found] == [("bowl", "")]


def test_referring_phrase_is_reported_as_the_label(segmenter) -> None:
    core = make_core(segmenter)
    core.handle("prompt/refer", string_cdr("the red mug"))
    labels = [d.results[0].hypothesis.class_id for d in frame_detections(core)]
    assert labels == ["the red mug"]


def test_mask_prompt_becomes_an_object(segmenter) -> None:
    core = make_core(segmenter)
    core.feed("image", image_cdr())
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[20:60, 30:90] = 255
    core.handle("prompt/mask", mask_cdr(mask))
    assert len(frame_detections(core, 2_000)) == 1


def test_rqt_mouse_click_becomes_an_object(segmenter) -> None:
    core = make_core(segmenter)
    core.feed("image", image_cdr())
    core.handle("image_mouse_left", mouse_cdr(64, 48))
    assert len(frame_detections(core, 2_000)) == 1


def test_clicked_point_in_another_frame_is_projected_through_tf(segmenter) -> None:
    lookups = []

    def lookup(target: str, source: str, stamp_ns: int) -> np.ndarray:
        lookups.append((target, source))
        return transform_matrix((0.0, 0.0, 2.0), (0.0, 0.0, 0.0, 1.0))

    core = make_core(segmenter)
    core.transform_lookup = lookup
    core.feed("image", image_cdr())
    core.handle("camera_info", camera_info_cdr())
    core.handle("clicked_point", clicked_point_cdr(0.1, 0.1, 0.0, frame_id="map"))
    assert len(frame_detections(core, 2_000)) == 1
    assert lookups == [(FRAME_ID, "map")]
    assert not any(name.startswith("click_") for name in core.counters.snapshot())


def test_reset_clears_prompts_and_tracks(segmenter) -> None:
    core = make_core(segmenter)
    core.feed("image", image_cdr())
    core.handle("prompt/point", pixel_point_cdr(40.0, 30.0))
    core.handle("prompt/refer", string_cdr("the red mug"))
    assert len(frame_detections(core, 2_000)) == 2
    response = messages.deserialize(
        core.handle_service("reset", trigger_request()), "std_srvs/srv/Trigger_Response"
    )
    assert response.success
    assert frame_detections(core, 3_000) == []


def test_clear_clicks_keeps_the_other_prompts(segmenter) -> None:
    core = make_core(segmenter)
    core.feed("image", image_cdr())
    core.handle("prompt/point", pixel_point_cdr(40.0, 30.0))
    core.handle("prompt/boxes", boxes_cdr(("mug", (60, 20, 120, 90))))
    assert len(frame_detections(core, 2_000)) == 2
    core.handle_service("clear_clicks", trigger_request())
    assert [d.results[0].hypothesis.class_id for d in frame_detections(core, 3_000)] == ["mug"]


def test_new_click_refines_the_clicked_object_instead_of_adding_one(segmenter) -> None:
    core = make_core(segmenter)
    core.feed("image", image_cdr())
    core.handle("prompt/point", pixel_point_cdr(40.0, 30.0))
    core.feed("image", image_cdr(2_000))
    core.handle("prompt/point", pixel_point_cdr(100.0, 70.0, label=0.0))
    assert len(frame_detections(core, 3_000)) == 1


# ---------------------------------------------------------------- bad input
BAD_INPUTS: dict[str, tuple[str, bytes, str]] = {
    "unsupported encoding": (
        "image",
        raw_image_cdr("bayer_rggb8", 4, 4, 4, bytes(16)),
        "unsupported_encoding",
    ),
    "encoding that does not fit the data": (
        "image",
        raw_image_cdr("rgb8", 4, 4, 4, bytes(16)),
        "image_layout_mismatch",
    ),
    "step/size mismatch": (
        "image",
        raw_image_cdr("mono8", 4, 4, 4, bytes(12)),
        "image_layout_mismatch",
    ),
    "empty image": ("image", raw_image_cdr("rgb8", 0, 0, 0, b""), "empty_image"),
    "huge image": ("image", image_cdr(height=200, width=300), "image_too_large"),
    "undecodable bytes": ("image", b"\x00\x01\x00\x00garbage", "malformed_message"),
    "empty class string": ("prompt/classes", string_cdr(" ; , "), "bad_classes"),
    "empty referring phrase": ("prompt/refer", string_cdr("   "), "bad_refer"),
    "click outside the image": (
        "prompt/point",
        pixel_point_cdr(500.0, 10.0),
        "click_outside_image",
    ),
    "NaN click": ("prompt/point", pixel_point_cdr(math.nan, 10.0), "click_not_finite"),
    "click label neither 0 nor 1": (
        "prompt/point",
        pixel_point_cdr(5.0, 5.0, 0.5),
        "bad_click_label",
    ),
    "rqt click outside the image": (
        "image_mouse_left",
        mouse_cdr(-5.0, 3.0),
        "click_outside_image",
    ),
    "clicked point before camera_info": (
        "clicked_point",
        clicked_point_cdr(0.0, 0.0, 1.0),
        "click_before_camera_info",
    ),
    "NaN clicked point": (
        "clicked_point",
        clicked_point_cdr(math.nan, 0.0, 1.0),
        "click_not_finite",
    ),
    "degenerate detector box": (
        "prompt/boxes",
        boxes_cdr(("mug", (500, 500, 600, 600))),
        "bad_box",
    ),
    "mask of another size": ("prompt/mask", mask_cdr(np.ones((10, 10))), "bad_mask"),
    "mask that is not mono8": (
        "prompt/mask",
        raw_image_cdr("rgb8", 2, 2, 6, bytes(12)),
        "bad_mask",
    ),
    "empty mask": ("prompt/mask", mask_cdr(np.zeros((HEIGHT, WIDTH))), "bad_mask"),
    "bad camera_info": (
        "camera_info",
        messages.serialize(
            messages.make_camera_info(messages.make_header(0, FRAME_ID), WIDTH, HEIGHT, [0.0] * 9)
        ),
        "bad_camera_info",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_logged_counted_and_the_node_keeps_serving(
    segmenter, caplog, case: str
) -> None:
    key, cdr, counter = BAD_INPUTS[case]
    core = make_core(segmenter, max_image_pixels=200 * 200)
    core.feed("image", image_cdr())
    with caplog.at_level(logging.WARNING, logger="seem_ros.node"):
        outputs = core.feed(key, cdr)
    assert outputs == []
    assert core.counters.get(counter) == 1
    assert any(f"[{counter}]" in record.getMessage() for record in caplog.records)
    assert len(core.feed("image", image_cdr(2_000))) == 3


@pytest.mark.parametrize(
    ("key", "cdr"),
    [
        ("prompt/point", pixel_point_cdr(5.0, 5.0)),
        ("image_mouse_left", mouse_cdr(5.0, 5.0)),
        ("prompt/mask", mask_cdr(np.ones((HEIGHT, WIDTH)))),
    ],
)
def test_prompt_before_any_image_is_rejected(segmenter, key: str, cdr: bytes) -> None:
    core = make_core(segmenter)
    core.handle(key, cdr)
    counts = core.counters.snapshot()
    assert counts.get("click_before_image", 0) + counts.get("prompt_before_image", 0) == 1
    assert frame_detections(core) == []


def test_clicked_point_behind_the_camera_is_rejected(segmenter) -> None:
    core = make_core(segmenter)
    core.feed("image", image_cdr())
    core.handle("camera_info", camera_info_cdr())
    core.handle("clicked_point", clicked_point_cdr(0.0, 0.0, -1.0))
    assert core.counters.get("click_behind_camera") == 1


def test_camera_info_that_does_not_fit_the_image_is_reported(segmenter) -> None:
    core = make_core(segmenter)
    core.feed("image", image_cdr())
    core.handle("camera_info", camera_info_cdr(width=640, height=480))
    core.handle("clicked_point", clicked_point_cdr(0.0, 0.0, 1.0))
    assert core.counters.get("camera_info_mismatch") == 1


def test_flood_of_prompts_keeps_memory_bounded_and_the_node_serving(segmenter) -> None:
    core = make_core(segmenter, max_clicks=8)
    core.feed("image", image_cdr())
    for index in range(300):
        core.handle("prompt/point", pixel_point_cdr(float(index % WIDTH), 10.0))
        core.handle("prompt/classes", string_cdr(f"thing {index}; other"))
        core.handle("prompt/boxes", boxes_cdr(("mug", (5, 5, 50, 40))))
    assert core.counters.get("clicks_dropped") >= 292
    found = frame_detections(core, 2_000)
    assert len(found) >= 2
    assert core.session.tracker.classes.names == ("thing 299", "other")


def test_burst_of_frames_drops_the_stale_ones_and_segments_the_newest(segmenter) -> None:
    done = threading.Event()
    stamps: list[int] = []

    def publish(key: str, ros_type: str, cdr: bytes) -> None:
        if key == "detections":
            stamps.append(messages.ns_from_stamp(messages.deserialize(cdr, ros_type).header.stamp))
            if stamps[-1] == 30:
                done.set()

    core = NodeCore(segmenter, NodeParams(backend="torch", diagnostics_period=60.0), publish)
    try:
        frames = [image_cdr(stamp) for stamp in range(1, 31)]
        for cdr in frames:
            core.handle("image", cdr)
        assert done.wait(30)
    finally:
        core.close()
    assert stamps[-1] == 30
    assert core.counters.get("frames_dropped") == 30 - len(stamps) > 0
    values = {kv.key: kv.value for kv in core.diagnostics().status[0].values}
    assert values["frames_received"] == "30"
    assert values["frames_dropped"] == str(30 - len(stamps))


def test_diagnostics_report_rate_latency_backend_and_counters(segmenter) -> None:
    core = make_core(segmenter)
    core.feed("prompt/classes", string_cdr(""))
    core.feed("image", image_cdr())
    status = core.diagnostics(stamp_ns=42).status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == messages.DiagnosticLevel.OK
    assert values["backend"] == "torch (fp32)"
    assert float(values["latency_ms_mean"]) > 0
    assert values["frames_processed"] == "1"
    assert values["bad_classes"] == "1"


def test_read_only_parameter_cannot_change_while_running(segmenter) -> None:
    core = make_core(segmenter)
    with pytest.raises(ParamError, match="restart"):
        core.update_params(backend="onnxruntime")


def test_overlay_can_be_switched_off_while_running(segmenter) -> None:
    core = make_core(segmenter)
    core.update_params(publish_overlay=False)
    assert "overlay" not in {o.key for o in core.feed("image", image_cdr())}


def test_feed_needs_a_synchronous_core(segmenter) -> None:
    core = NodeCore(segmenter, NodeParams(backend="torch"), lambda *_: None)
    try:
        with pytest.raises(RuntimeError, match="threaded=False"):
            core.feed("image", image_cdr())
    finally:
        core.close()


def test_unknown_input_is_an_adapter_bug(segmenter) -> None:
    with pytest.raises(KeyError, match="unknown input"):
        make_core(segmenter).handle("image_raw", image_cdr())


def test_core_thread_stops_on_close(segmenter) -> None:
    core = NodeCore(
        segmenter, NodeParams(backend="torch", diagnostics_period=0.05), lambda *_: None
    )
    time.sleep(0.1)
    core.close()
    assert not core.worker._thread.is_alive()


# ---------------------------------------------------------------- label info and the model
def test_standing_class_names_are_announced_as_label_info(segmenter) -> None:
    announced: list[list[str]] = []

    def on_labels(cdr: bytes) -> None:
        info = messages.deserialize(cdr, messages.LABEL_INFO)
        announced.append([f"{c.class_id}:{c.class_name}" for c in info.class_map])

    core = NodeCore(
        segmenter,
        NodeParams(backend="torch", classes="mug"),
        lambda *_: None,
        threaded=False,
        on_labels=on_labels,
    )
    core.handle("prompt/classes", string_cdr("cup; plate"))
    core.update_params(classes="bowl")
    core.reset()
    assert announced == [["1:mug"], ["1:cup", "2:plate"], ["1:bowl"], ["1:bowl"]]


def test_class_parameter_without_a_name_is_a_parameter_error(segmenter) -> None:
    core = make_core(segmenter)
    with pytest.raises(ParamError, match="classes"):
        core.update_params(classes=" ; ")
    assert core.params.classes == ""


def test_demo_model_is_searched_under_every_ament_prefix(monkeypatch, tmp_path: Path) -> None:
    from seem_ros.model_zoo import DEMO_MODEL_NAME, model_search_paths

    overlay, underlay = tmp_path / "install", tmp_path / "opt_ros"
    monkeypatch.setenv("AMENT_PREFIX_PATH", f"{overlay}:{underlay}")
    expected = underlay / "share" / "seem_ros" / "models" / DEMO_MODEL_NAME
    assert expected in model_search_paths()
