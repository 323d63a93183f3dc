"""Specification of seem_ros.ros.bag_io: rosbag2 (sqlite3 and MCAP) in and out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rosbags.rosbag2 import Reader

from seem_ros.ros import messages
from seem_ros.ros.bag_io import BagReader, BagWriter, write_sample_bag
from seem_ros.ros.image_codec import image_msg_to_rgb, rgb_to_image_msg

STORAGES = ["mcap", "sqlite3"]
T0 = 1_700_000_000_000_000_000


def string_cdr(text: str) -> bytes:
    return messages.serialize(messages.make_string(text))


def detections_cdr(stamp_ns: int) -> bytes:
    header = messages.make_header(stamp_ns, "camera")
    array = messages.make_detection_array(header, [("cup", 0.5, (1, 2, 3, 4), 9)])
    return messages.serialize(array)


def image_cdr(stamp_ns: int, value: int) -> bytes:
    rgb = np.full((4, 6, 3), value, np.uint8)
    return messages.serialize(rgb_to_image_msg(rgb, messages.make_header(stamp_ns, "camera")))


def write_three_topic_bag(path: Path, storage: str) -> list[tuple[str, int, bytes]]:
    """Write interleaved messages out of time order; return them sorted by time."""
    written = [
        ("/camera/image_raw", T0 + 200, image_cdr(T0 + 200, 2)),
        ("/prompt/classes", T0 + 50, string_cdr("cup")),
        ("/camera/image_raw", T0 + 100, image_cdr(T0 + 100, 1)),
        ("/seem/detections", T0 + 150, detections_cdr(T0 + 100)),
        ("/prompt/classes", T0 + 300, string_cdr("mug")),
    ]
    with BagWriter(path, storage) as writer:
        writer.add_topic("/camera/image_raw", "sensor_msgs/msg/Image")
        writer.add_topic("/prompt/classes", "std_msgs/String")
        writer.add_topic("/seem/detections", messages.DETECTION_2D_ARRAY)
        for topic, stamp_ns, cdr in written:
            writer.write(topic, stamp_ns, cdr)
    return sorted(written, key=lambda item: item[1])


@pytest.mark.parametrize("storage", STORAGES)
def test_round_trip_yields_every_message_in_time_order(tmp_path: Path, storage: str) -> None:
    expected = write_three_topic_bag(tmp_path / "bag", storage)
    with BagReader(tmp_path / "bag") as reader:
        read = [(m.topic, m.timestamp_ns, m.cdr) for m in reader.messages()]
    assert read == expected


@pytest.mark.parametrize("storage", STORAGES)
def test_topics_map_names_to_canonical_types(tmp_path: Path, storage: str) -> None:
    write_three_topic_bag(tmp_path / "bag", storage)
    with BagReader(tmp_path / "bag") as reader:
        assert reader.topics() == {
            "/camera/image_raw": messages.IMAGE,
            "/prompt/classes": messages.STRING,
            "/seem/detections": messages.DETECTION_2D_ARRAY,
        }


@pytest.mark.parametrize("storage", STORAGES)
def test_messages_can_be_filtered_by_topic(tmp_path: Path, storage: str) -> None:
    write_three_topic_bag(tmp_path / "bag", storage)
    with BagReader(tmp_path / "bag") as reader:
        prompts = list(reader.messages(topics=["/prompt/classes"]))
    texts = [messages.deserialize(m.cdr, m.ros_type).data for m in prompts]
    assert texts == ["cup", "mug"]
    assert {m.ros_type for m in prompts} == {messages.STRING}


def test_filtering_on_a_missing_topic_names_it(tmp_path: Path) -> None:
    write_three_topic_bag(tmp_path / "bag", "mcap")
    with BagReader(tmp_path / "bag") as reader, pytest.raises(ValueError, match="/nope"):
        list(reader.messages(topics=["/nope"]))


@pytest.mark.parametrize(("storage", "suffix"), [("mcap", ".mcap"), ("sqlite3", ".db3")])
def test_bare_storage_file_is_readable(tmp_path: Path, storage: str, suffix: str) -> None:
    expected = write_three_topic_bag(tmp_path / "bag", storage)
    with BagReader(tmp_path / "bag" / f"bag{suffix}") as reader:
        assert [m.timestamp_ns for m in reader.messages()] == [item[1] for item in expected]


@pytest.mark.parametrize("storage", STORAGES)
def test_output_is_readable_by_rosbags_directly(tmp_path: Path, storage: str) -> None:
    expected = write_three_topic_bag(tmp_path / "bag", storage)
    with Reader(tmp_path / "bag") as reader:
        assert reader.message_count == len(expected)
        assert [timestamp for _, timestamp, _ in reader.messages()] == [t for _, t, _ in expected]
    metadata = yaml.safe_load((tmp_path / "bag" / "metadata.yaml").read_text())
    assert metadata["rosbag2_bagfile_information"]["storage_identifier"] == storage


def test_mcap_output_decodes_with_mcap_ros2(tmp_path: Path) -> None:
    write_three_topic_bag(tmp_path / "bag", "mcap")
    with (tmp_path / "bag" / "bag.mcap").open("rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        decoded = list(reader.iter_decoded_messages(log_time_order=True))
    assert [channel.topic for _, channel, _, _ in decoded] == [
        "/prompt/classes",
        "/camera/image_raw",
        "/seem/detections",
        "/camera/image_raw",
        "/prompt/classes",
    ]
    detection = decoded[2][3].detections[0]
    assert (detection.results[0].hypothesis.class_id, detection.id) == ("cup", "9")
    assert (detection.bbox.size_x, detection.bbox.size_y) == (2.0, 2.0)
    image = decoded[1][3]
    assert (image.width, image.height, image.encoding) == (6, 4, "rgb8")
    assert set(bytes(image.data)) == {1}
    assert decoded[0][3].data == "cup"


def test_writer_refuses_an_existing_path(tmp_path: Path) -> None:
    with pytest.raises(FileExistsError, match="exists"):
        BagWriter(tmp_path, "mcap")


def test_writer_rejects_unknown_storage(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'mcap' or 'sqlite3', got 'rosbag1'"):
        BagWriter(tmp_path / "bag", "rosbag1")  # type: ignore[arg-type]


def test_writing_to_an_undeclared_topic_is_rejected(tmp_path: Path) -> None:
    with BagWriter(tmp_path / "bag") as writer, pytest.raises(ValueError, match="add_topic"):
        writer.write("/camera/image_raw", T0, image_cdr(T0, 0))


def test_redeclaring_a_topic_with_another_type_is_rejected(tmp_path: Path) -> None:
    with BagWriter(tmp_path / "bag") as writer:
        writer.add_topic("/x", messages.STRING)
        writer.add_topic("/x", "std_msgs/msg/String")
        with pytest.raises(ValueError, match="already has type std_msgs/msg/String"):
            writer.add_topic("/x", messages.IMAGE)


def test_reader_rejects_a_path_that_is_not_a_bag(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="cannot open"):
        BagReader(tmp_path / "notes.txt")


@pytest.mark.parametrize("storage", STORAGES)
def test_sample_bag_holds_frames_and_prompts_in_time_order(tmp_path: Path, storage: str) -> None:
    frames = [np.full((4, 6, 3), value, np.uint8) for value in (10, 20, 30)]
    path = write_sample_bag(
        tmp_path / "sample",
        storage,
        frames,
        prompts=[(T0 + 150_000_000, "cup, bottle")],
        start_ns=T0,
        period_ns=100_000_000,
    )
    with BagReader(path) as reader:
        read = list(reader.messages())
    assert [(m.topic, m.timestamp_ns - T0) for m in read] == [
        ("/camera/image_raw", 0),
        ("/camera/image_raw", 100_000_000),
        ("/prompt/classes", 150_000_000),
        ("/camera/image_raw", 200_000_000),
    ]
    images = [messages.deserialize(m.cdr, m.ros_type) for m in read if m.ros_type == messages.IMAGE]
    for frame, image in zip(frames, images, strict=True):
        np.testing.assert_array_equal(image_msg_to_rgb(image), frame)
    assert messages.ns_from_stamp(images[1].header.stamp) == T0 + 100_000_000
    assert messages.deserialize(read[2].cdr, messages.STRING).data == "cup, bottle"


def test_sample_bag_needs_frames(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        write_sample_bag(tmp_path / "sample", "mcap", [])
