"""Specification of offline bag processing: ``seem-ros bag`` and ``seem_ros.ros.bag_processing``.

Bags are real rosbag2 files (MCAP and sqlite3) written here, processed by the node core with
the random-init ``tiny`` model saved to a real safetensors file, and read back with
``rosbags`` and ``mcap_ros2``. Assertions are about structure and time order, never mask
quality.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rosbags.rosbag2 import Reader

from seem_ros.cli import main as cli_main
from seem_ros.model.build import build_model, save_model
from seem_ros.model.card import ModelCard
from seem_ros.model.config import load_config
from seem_ros.ros import messages
from seem_ros.ros.bag_io import BagWriter
from seem_ros.ros.bag_processing import (
    SAMPLE_BAG,
    BagProcessingError,
    plan_topics,
    process_bag,
)
from seem_ros.ros.image_codec import rgb_to_image_msg
from seem_ros.ros.params import NodeParams
from seem_ros.ros.pipeline import load_segmenter_for
from seem_ros.segmenter import Segmenter

T0 = 1_700_000_000_000_000_000
PERIOD_NS = 100_000_000
HEIGHT, WIDTH = 48, 64
IMAGE_TOPIC = "/camera/image_raw"
OUTPUT_TOPICS = ("/seem/detections", "/seem/instance_mask", "/seem/overlay")
STORAGE_PAIRS = [("mcap", "mcap"), ("sqlite3", "sqlite3"), ("sqlite3", "mcap")]


# ---------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The random-init ``tiny`` network at 64 px input, in a real safetensors file."""
    config = dataclasses.replace(load_config("tiny"), image_size=64)
    folder = tmp_path_factory.mktemp("model")
    return save_model(build_model(config, seed=0), folder / "tiny.safetensors", ModelCard(config))


def node_params(model_path: Path, **changes: Any) -> NodeParams:
    return NodeParams(model_path=str(model_path), backend="torch", device="cpu", **changes)


@pytest.fixture(scope="module")
def segmenter(model_path: Path) -> Segmenter:
    return load_segmenter_for(node_params(model_path))


def frame_time(index: int) -> int:
    return T0 + index * PERIOD_NS


def image_cdr(stamp_ns: int) -> bytes:
    pixels = np.random.default_rng(stamp_ns % 2**32).integers(
        0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8
    )
    return messages.serialize(rgb_to_image_msg(pixels, messages.make_header(stamp_ns, "camera")))


def string_cdr(text: str) -> bytes:
    return messages.serialize(messages.make_string(text))


def point_cdr(x: float, y: float, positive: bool = True) -> bytes:
    header = messages.make_header(0, "camera")
    return messages.serialize(messages.make_point_stamped(header, x, y, float(positive)))


def write_bag(
    path: Path,
    storage: str = "mcap",
    frames: int = 4,
    extra: Sequence[tuple[str, str, int, bytes]] = (),
) -> Path:
    """``frames`` rgb8 frames on /camera/image_raw plus ``(topic, type, time, cdr)`` extras."""
    records = [
        (IMAGE_TOPIC, messages.IMAGE, frame_time(i), image_cdr(frame_time(i)))
        for i in range(frames)
    ]
    records += list(extra)
    with BagWriter(path, storage) as writer:  # type: ignore[arg-type]
        for topic, ros_type, _, _ in records:
            writer.add_topic(topic, ros_type)
        for topic, _, stamp_ns, cdr in sorted(records, key=lambda record: record[2]):
            writer.write(topic, stamp_ns, cdr)
    return path


def read_with_rosbags(path: Path) -> list[tuple[str, int, Any]]:
    """``(topic, bag time, message)`` of every message, read by rosbags itself."""
    with Reader(path) as reader:
        return [
            (connection.topic, stamp_ns, messages.deserialize(data, connection.msgtype))
            for connection, stamp_ns, data in reader.messages()
        ]


def detections_by_time(records: list[tuple[str, int, Any]]) -> dict[int, Any]:
    return {t: msg for topic, t, msg in records if topic == "/seem/detections"}


def labels(array: Any) -> list[str]:
    return [d.results[0].hypothesis.class_id for d in array.detections]


# ---------------------------------------------------------------- outputs
@pytest.mark.parametrize(("in_storage", "out_storage"), STORAGE_PAIRS)
def test_every_frame_gets_detections_mask_and_overlay_at_its_own_time(
    tmp_path: Path, segmenter: Segmenter, model_path: Path, in_storage: str, out_storage: str
) -> None:
    source = write_bag(tmp_path / "in", in_storage)
    summary = process_bag(
        source, tmp_path / "out", segmenter, node_params(model_path), storage=out_storage
    )
    records = read_with_rosbags(tmp_path / "out")
    frame_times = [frame_time(i) for i in range(4)]
    for topic in OUTPUT_TOPICS:
        outputs = [(t, msg) for name, t, msg in records if name == topic]
        assert [t for t, _ in outputs] == frame_times, topic
        assert [messages.ns_from_stamp(msg.header.stamp) for _, msg in outputs] == frame_times
    assert (summary.frames, summary.frames_segmented) == (4, 4)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_every_input_message_is_copied_unchanged(
    tmp_path: Path, segmenter: Segmenter, model_path: Path, storage: str
) -> None:
    extra = [("/prompt/classes", messages.STRING, frame_time(1) - 1, string_cdr("cup"))]
    source = write_bag(tmp_path / "in", storage, extra=extra)
    process_bag(source, tmp_path / "out", segmenter, node_params(model_path), storage=storage)
    with Reader(source) as reader:
        expected = [(c.topic, t, bytes(d)) for c, t, d in reader.messages()]
    with Reader(tmp_path / "out") as reader:
        inputs = {IMAGE_TOPIC, "/prompt/classes"}
        copied = [(c.topic, t, bytes(d)) for c, t, d in reader.messages() if c.topic in inputs]
    assert copied == expected


def test_mcap_output_decodes_with_mcap_ros2(
    tmp_path: Path, segmenter: Segmenter, model_path: Path
) -> None:
    source = write_bag(tmp_path / "in", "sqlite3")
    process_bag(source, tmp_path / "out", segmenter, node_params(model_path), storage="mcap")
    with (tmp_path / "out" / "out.mcap").open("rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        decoded = [(channel.topic, msg) for _, channel, _, msg in reader.iter_decoded_messages()]
    detections = [msg for topic, msg in decoded if topic == "/seem/detections"]
    masks = [msg for topic, msg in decoded if topic == "/seem/instance_mask"]
    assert len(detections) == 4
    assert {(m.encoding, m.width, m.height) for m in masks} == {("mono16", WIDTH, HEIGHT)}
    assert any(topic == "/diagnostics" for topic, _ in decoded)


def test_diagnostics_close_the_bag_with_the_frame_counts(
    tmp_path: Path, segmenter: Segmenter, model_path: Path
) -> None:
    source = write_bag(tmp_path / "in", frames=3)
    process_bag(source, tmp_path / "out", segmenter, node_params(model_path))
    diagnostics = [
        (t, msg) for topic, t, msg in read_with_rosbags(tmp_path / "out") if topic == "/diagnostics"
    ]
    last_time, last = diagnostics[-1]
    values = {kv.key: kv.value for kv in last.status[0].values}
    assert last_time == frame_time(2)
    assert (values["frames_received"], values["frames_processed"]) == ("3", "3")


def test_overlay_is_left_out_when_the_parameter_disables_it(
    tmp_path: Path, segmenter: Segmenter, model_path: Path
) -> None:
    source = write_bag(tmp_path / "in", frames=2)
    params = node_params(model_path, publish_overlay=False)
    process_bag(source, tmp_path / "out", segmenter, params)
    topics = {topic for topic, _, _ in read_with_rosbags(tmp_path / "out")}
    assert "/seem/overlay" not in topics
    assert {"/seem/detections", "/seem/instance_mask"} <= topics


def test_earlier_outputs_in_the_input_are_replaced_not_doubled(
    tmp_path: Path, segmenter: Segmenter, model_path: Path
) -> None:
    source = write_bag(tmp_path / "in", frames=3)
    process_bag(source, tmp_path / "first", segmenter, node_params(model_path))
    process_bag(tmp_path / "first", tmp_path / "second", segmenter, node_params(model_path))
    records = read_with_rosbags(tmp_path / "second")
    assert [t for topic, t, _ in records if topic == "/seem/detections"] == [
        frame_time(i) for i in range(3)
    ]


# ---------------------------------------------------------------- prompts in time order
def test_a_phrase_arriving_mid_bag_replaces_the_followed_object_from_its_time_on(
    tmp_path: Path, segmenter: Segmenter, model_path: Path
) -> None:
    extra = [
        ("/prompt/refer", messages.STRING, T0 - 1, string_cdr("the red mug")),
        ("/prompt/refer", messages.STRING, frame_time(2) - 1, string_cdr("the blue door")),
    ]
    source = write_bag(tmp_path / "in", frames=4, extra=extra)
    process_bag(source, tmp_path / "out", segmenter, node_params(model_path))
    found = detections_by_time(read_with_rosbags(tmp_path / "out"))
    assert [labels(found[frame_time(i)]) for i in range(4)] == [
        ["the red mug"],
        ["the red mug"],
        ["the blue door"],
        ["the blue door"],
    ]


def test_a_click_mid_bag_adds_one_tracked_object_from_its_time_on(
    tmp_path: Path, segmenter: Segmenter, model_path: Path
) -> None:
    click = ("/prompt/point", messages.POINT_STAMPED, frame_time(2) - 1, point_cdr(30.0, 20.0))
    source = write_bag(tmp_path / "in", frames=4, extra=[click])
    process_bag(source, tmp_path / "out", segmenter, node_params(model_path))
    found = detections_by_time(read_with_rosbags(tmp_path / "out"))
    counts = [len(found[frame_time(i)].detections) for i in range(4)]
    ids = {d.id for i in (2, 3) for d in found[frame_time(i)].detections}
    assert counts == [0, 0, 1, 1]
    assert len(ids) == 1 and ids.pop().isdigit()


def static_transform_cdr(parent: str, child: str, translation: tuple[float, float, float]) -> bytes:
    types = messages.TYPESTORE.types
    transform = types["geometry_msgs/msg/Transform"](
        translation=types["geometry_msgs/msg/Vector3"](*translation),
        rotation=types["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
    )
    stamped = types["geometry_msgs/msg/TransformStamped"](
        header=messages.make_header(0, parent), child_frame_id=child, transform=transform
    )
    return messages.serialize(types["tf2_msgs/msg/TFMessage"](transforms=[stamped]))


def test_an_rviz_click_in_another_frame_is_projected_through_the_bags_tf(
    tmp_path: Path, segmenter: Segmenter, model_path: Path
) -> None:
    k = [100.0, 0.0, WIDTH / 2, 0.0, 100.0, HEIGHT / 2, 0.0, 0.0, 1.0]
    info = messages.make_camera_info(messages.make_header(0, "camera"), WIDTH, HEIGHT, k)
    # base_link -> camera is a pure 10 cm shift, so (0.1, 0, 1) in base_link is the
    # optical axis 1 m ahead of the camera: the image centre.
    tf = static_transform_cdr("base_link", "camera", (0.1, 0.0, 0.0))
    click = messages.make_point_stamped(messages.make_header(0, "base_link"), 0.1, 0.0, 1.0)
    extra = [
        ("/tf_static", "tf2_msgs/msg/TFMessage", T0 - 2, tf),
        ("/camera/camera_info", messages.CAMERA_INFO, T0 - 1, messages.serialize(info)),
        ("/clicked_point", messages.POINT_STAMPED, frame_time(2) - 1, messages.serialize(click)),
    ]
    source = write_bag(tmp_path / "in", frames=4, extra=extra)
    process_bag(source, tmp_path / "out", segmenter, node_params(model_path))
    found = detections_by_time(read_with_rosbags(tmp_path / "out"))
    assert [len(found[frame_time(i)].detections) for i in range(4)] == [0, 0, 1, 1]


def test_a_click_before_the_first_frame_is_rejected_as_the_live_node_would(
    tmp_path: Path, segmenter: Segmenter, model_path: Path
) -> None:
    click = ("/prompt/point", messages.POINT_STAMPED, T0 - 1, point_cdr(30.0, 20.0))
    source = write_bag(tmp_path / "in", frames=2, extra=[click])
    process_bag(source, tmp_path / "out", segmenter, node_params(model_path))
    records = read_with_rosbags(tmp_path / "out")
    assert all(not msg.detections for msg in detections_by_time(records).values())
    last = [msg for topic, _, msg in records if topic == "/diagnostics"][-1]
    assert {kv.key: kv.value for kv in last.status[0].values}["click_before_image"] == "1"


# ---------------------------------------------------------------- topic mapping
def test_plan_maps_namespaced_prompt_topics_onto_core_inputs() -> None:
    plan = plan_topics(
        {
            "/robot/cam/image_raw": messages.IMAGE,
            "/robot/cam/camera_info": messages.CAMERA_INFO,
            "/robot/prompt/classes": messages.STRING,
            "/clicked_point": messages.POINT_STAMPED,
            "/robot/cam/image_raw_mouse_left": messages.POINT,
            "/robot/prompt/mask": messages.IMAGE,
            "/chatter": messages.STRING,
        }
    )
    assert plan.image_topic == "/robot/cam/image_raw"
    assert plan.inputs == {
        "/robot/cam/image_raw": "image",
        "/robot/cam/camera_info": "camera_info",
        "/robot/prompt/classes": "prompt/classes",
        "/clicked_point": "clicked_point",
        "/robot/cam/image_raw_mouse_left": "image_mouse_left",
        "/robot/prompt/mask": "prompt/mask",
    }


def test_plan_takes_the_camera_info_beside_the_image() -> None:
    plan = plan_topics(
        {
            "/front/image/compressed": messages.COMPRESSED_IMAGE,
            "/front/camera_info": messages.CAMERA_INFO,
            "/rear/camera_info": messages.CAMERA_INFO,
        }
    )
    assert plan.inputs["/front/image/compressed"] == "image/compressed"
    assert plan.inputs["/front/camera_info"] == "camera_info"
    assert "/rear/camera_info" not in plan.inputs


def test_plan_refuses_two_image_topics_and_names_them() -> None:
    topics = {"/left/image": messages.IMAGE, "/right/image": messages.IMAGE}
    with pytest.raises(BagProcessingError, match=r"'/left/image', '/right/image'.*--image-topic"):
        plan_topics(topics)
    assert plan_topics(topics, "/right/image").image_topic == "/right/image"


def test_plan_refuses_a_bag_without_an_image_topic() -> None:
    with pytest.raises(BagProcessingError, match=r"no sensor_msgs/msg/Image or .*CompressedImage"):
        plan_topics({"/prompt/classes": messages.STRING})


def test_image_topic_option_must_name_an_image_topic_of_the_bag() -> None:
    topics = {"/cam/image": messages.IMAGE, "/prompt/classes": messages.STRING}
    with pytest.raises(BagProcessingError, match="'/cam/img' is not in the bag"):
        plan_topics(topics, "/cam/img")
    with pytest.raises(BagProcessingError, match="is a std_msgs/msg/String, not a"):
        plan_topics(topics, "/prompt/classes")


# ---------------------------------------------------------------- bad input
def test_a_corrupt_bag_is_refused_and_leaves_no_output(
    tmp_path: Path, segmenter: Segmenter, model_path: Path
) -> None:
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(BagProcessingError, match=r"cannot open .*junk\.mcap"):
        process_bag(junk, tmp_path / "out", segmenter, node_params(model_path))
    assert not (tmp_path / "out").exists()


def test_an_existing_output_is_never_overwritten(
    tmp_path: Path, segmenter: Segmenter, model_path: Path
) -> None:
    source = write_bag(tmp_path / "in", frames=1)
    (tmp_path / "out").mkdir()
    with pytest.raises(BagProcessingError, match="exists; name a new path"):
        process_bag(source, tmp_path / "out", segmenter, node_params(model_path))


def run_cli(*argv: str | Path) -> int:
    return cli_main(["bag", *(str(arg) for arg in argv), "--no-progress"])


def test_command_prints_a_summary_and_exits_0(
    tmp_path: Path, model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_bag(tmp_path / "in", frames=2)
    status = run_cli(
        source, tmp_path / "out", "--model", model_path, "--classes", "cup; bottle",
        "--param", "backend=torch", "--storage", "sqlite3",
    )  # fmt: skip
    assert status == 0
    assert "2 frames (0 not segmented)" in capsys.readouterr().out
    assert (tmp_path / "out" / "out.db3").is_file()


@pytest.mark.parametrize(
    ("case", "expected_log"),
    [
        ("missing model", "nope.safetensors"),
        ("corrupt bag", "File magic is invalid"),
        ("no image topic", "no sensor_msgs/msg/Image"),
    ],
)
def test_command_exits_2_with_the_reason(
    tmp_path: Path,
    model_path: Path,
    case: str,
    expected_log: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = write_bag(tmp_path / "in", frames=1)
    model = model_path
    if case == "missing model":
        model = tmp_path / "nope.safetensors"
    elif case == "corrupt bag":
        source = tmp_path / "junk.mcap"
        source.write_bytes(b"not a bag at all" * 64)
    elif case == "no image topic":
        source = tmp_path / "prompts_only"
        with BagWriter(source) as writer:
            writer.add_topic("/prompt/classes", messages.STRING)
            writer.write("/prompt/classes", T0, string_cdr("cup"))
    status = run_cli(source, tmp_path / "out", "--model", model, "--param", "backend=torch")
    assert status == 2
    assert expected_log in caplog.text


# ---------------------------------------------------------------- the shipped sample
def test_sample_bag_is_shipped_and_small() -> None:
    assert SAMPLE_BAG.is_file()
    assert SAMPLE_BAG.stat().st_size < 400 * 1024


def test_sample_bag_processes_with_its_click_tracked_to_the_end(
    tmp_path: Path, segmenter: Segmenter, model_path: Path
) -> None:
    summary = process_bag(SAMPLE_BAG, tmp_path / "out", segmenter, node_params(model_path))
    records = read_with_rosbags(tmp_path / "out")
    click_time = next(t for topic, t, _ in records if topic == "/prompt/point")
    found = detections_by_time(records)
    assert summary.frames == summary.frames_segmented == len(found) >= 10
    assert summary.plan.inputs == {
        "/camera/image_raw/compressed": "image/compressed",
        "/camera/camera_info": "camera_info",
        "/prompt/classes": "prompt/classes",
        "/prompt/point": "prompt/point",
    }
    track_ids = {d.id for t, msg in found.items() if t > click_time for d in msg.detections}
    assert len(track_ids) == 1
