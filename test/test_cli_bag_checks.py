"""``seem-ros bag`` checks its arguments before it spends seconds loading the model."""

from __future__ import annotations

from pathlib import Path

import pytest
from ros_payloads import image_cdr, string_cdr

from seem_ros.cli import main
from seem_ros.ros import messages
from seem_ros.ros.bag_io import BagWriter
from seem_ros.ros.bag_processing import SAMPLE_BAG

T0 = 1_700_000_000_000_000_000


@pytest.fixture(autouse=True)
def no_model_load(monkeypatch):
    import seem_ros.ros.pipeline as pipeline

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(pipeline, "load_segmenter_for", refuse)


def bag(*argv: str | Path) -> int:
    return main(["bag", *(str(a) for a in argv), "--no-progress"])


def test_a_missing_input_bag_is_reported_before_the_model_loads(tmp_path, caplog):
    assert bag(tmp_path / "nope", tmp_path / "out") == 2
    assert "input bag not found" in caplog.text


def test_an_existing_output_is_reported_before_the_model_loads(tmp_path, caplog):
    (tmp_path / "out").mkdir()
    assert bag(SAMPLE_BAG, tmp_path / "out") == 2
    assert "exists; name a new path" in caplog.text


def test_a_bag_without_an_image_topic_is_reported_before_the_model_loads(tmp_path, caplog):
    source = tmp_path / "prompts_only"
    with BagWriter(source) as writer:
        writer.add_topic("/prompt/classes", messages.STRING)
        writer.write("/prompt/classes", T0, string_cdr("cup"))
    assert bag(source, tmp_path / "out") == 2
    assert "no sensor_msgs/msg/Image" in caplog.text


def test_a_named_image_topic_the_bag_lacks_is_reported_before_the_model_loads(tmp_path, caplog):
    source = tmp_path / "camera"
    with BagWriter(source) as writer:
        writer.add_topic("/camera/image", messages.IMAGE)
        writer.write("/camera/image", T0, image_cdr(T0))
    assert bag(source, tmp_path / "out", "--image-topic", "/other/image") == 2
    assert "/other/image" in caplog.text


def test_good_arguments_do_reach_the_model(tmp_path):
    with pytest.raises(AssertionError, match="model was loaded"):
        bag(SAMPLE_BAG, tmp_path / "out")
