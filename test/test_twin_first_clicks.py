"""The twin first-click diagnostic (tools/robustness/twin_first_clicks.py) on the demo model."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from robustness_tools import DEMO, load_tool, tool_path

TOOL = tool_path("twin_first_clicks")


def test_iou_counts_overlap_over_union():
    tool = load_tool("twin_first_clicks")
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:2] = True
    b[1:3] = True
    assert tool.iou(a, b) == 4 / 12
    assert tool.iou(a & False, b & False) == 1.0


def test_the_tool_scores_every_followed_object_and_its_twins(tmp_path):
    out = tmp_path / "twins.json"
    command = [sys.executable, str(TOOL), str(DEMO), "--clips", "3", "--variants", "clean"]
    subprocess.run(
        [*command, "--threads", "1", "--json", str(out)],
        check=True,
        capture_output=True,
    )
    report = json.loads(out.read_text())
    clean = report["variants"]["clean"]
    assert report["split"] == "val" and report["weights_sha256"]
    assert clean["objects"] == 6 and 0 <= clean["twins"] <= 6
    assert 0.0 < clean["miou_first_click"] <= 1.0
    assert 0 <= clean["failed_below_0.7"] <= 6
    assert 0 <= clean["failed_twins"] <= min(clean["twins"], clean["failed_below_0.7"])
    if clean["failed_twins"] == 0:
        assert clean["miou_failed_twins_negative_click"] is None


def test_the_second_round_clicks_off_the_look_alike_the_mask_took_in():
    from seem_ros.eval.benchmark import _most_interior_click
    from seem_ros.eval.robustness import VariantWorld
    from seem_ros.prompts import ObjectPrompt
    from seem_ros.segmenter import Segmenter
    from seem_ros.train.episodes import twin_ids

    tool = load_tool("twin_first_clicks")
    segmenter = Segmenter.from_pretrained(DEMO)
    world = VariantWorld("clean", "val", segmenter.image_size, 2)
    frame = next(f for f in (world.clip(i).frames[0] for i in range(20)) if twin_ids(f))
    segment = next(s for s in frame.thing_segments if s.id in twin_ids(frame))
    click = _most_interior_click(frame.segment_ids == segment.id)
    first = segmenter.segment(frame.image, ObjectPrompt(points=click)).instances[0]

    second = tool.negative_click_on_twin(segmenter, frame, segment, click, first)

    look = (segment.category, segment.colour, segment.size)
    twins = [
        s
        for s in frame.thing_segments
        if s.id != segment.id and (s.category, s.colour, s.size) == look
    ]
    twin = max(twins, key=lambda s: int((first.mask & (frame.segment_ids == s.id)).sum()))
    x, y = _most_interior_click(frame.segment_ids == twin.id).coords[0]
    assert second.shape == frame.hw
    assert not second[int(y), int(x)]  # the negative click's pixel is never in the answer
    col, row = click.coords[0]
    assert second[int(row), int(col)]  # and the positive click's pixel still is
