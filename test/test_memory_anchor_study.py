"""The memory-anchor study (tools/robustness/memory_anchor.py) on the demo model."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from robustness_tools import DEMO, load_tool, tool_path

from seem_ros.data import render_clip
from seem_ros.eval.benchmark import Benchmark, _most_interior_click
from seem_ros.prompts import MemoryPrompt, ObjectPrompt, ReferenceRegion, as_prompt_set
from seem_ros.segmenter import Segmenter

TOOL = tool_path("memory_anchor")


def test_weight_zero_is_the_benchmarks_video_protocol_and_weight_one_carries_the_first_tokens():
    tool = load_tool("memory_anchor")
    segmenter = Segmenter.from_pretrained(DEMO)
    clip = render_clip(seed=11, n_frames=4, split="val")
    target = max(clip.frames[0].thing_segments, key=lambda s: s.area)
    truth = clip.frames[0].segment_ids == target.id
    benchmark = Benchmark(segmenter, split="val", progress=False)
    protocol = benchmark._propagate(clip.frames, truth, use_memory=True)
    encoded = [segmenter.encode_image(frame.image) for frame in clip.frames]
    plain = tool.follow_anchored(segmenter, encoded, clip.frames[0].image, truth, 0.0)
    assert all(np.array_equal(a, b) for a, b in zip(plain, protocol, strict=True))

    anchored = tool.follow_anchored(segmenter, encoded, clip.frames[0].image, truth, 1.0)
    click = ObjectPrompt(points=_most_interior_click(truth))
    first = segmenter.decode(encoded[0], as_prompt_set(click)).instances[0]
    reference = ReferenceRegion(clip.frames[0].image, first.mask)
    memory = first.memory
    expected = [first.mask]
    for frame in encoded[1:]:
        prompt = ObjectPrompt(memory=memory, reference=reference)
        answer = segmenter.decode(frame, as_prompt_set(prompt)).instances[0]
        expected.append(answer.mask)
        memory = MemoryPrompt(mask=answer.memory.mask, tokens=first.memory.tokens)
    assert all(np.array_equal(a, b) for a, b in zip(anchored, expected, strict=True))
    assert not np.array_equal(anchored[-1], plain[-1])  # the tokens carried matter on this clip


def test_the_tool_reports_every_weight_against_the_protocol(tmp_path):
    out = tmp_path / "anchor.json"
    command = [sys.executable, str(TOOL), str(DEMO), "--clips", "1", "--variants", "clean"]
    subprocess.run(
        [*command, "--weights", "0.5", "--threads", "1", "--json", str(out)],
        check=True,
        capture_output=True,
    )
    report = json.loads(out.read_text())
    clean = report["clean"]
    assert report["split"] == "val" and clean["objects"] == 2
    assert set(clean) == {"objects", "w0", "w0.5"}  # weight 0 is always measured
    assert clean["w0"]["gained"] == clean["w0"]["lost"] == 0
    assert 0.0 < clean["w0.5"]["jf"] <= 1.0
    assert clean["w0.5"]["gained"] + clean["w0.5"]["lost"] <= 2
