"""The memory-anchor study (tools/robustness/memory_anchor.py) on the demo model."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from seem_ros.data import render_clip
from seem_ros.eval.benchmark import Benchmark
from seem_ros.segmenter import Segmenter

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "robustness" / "memory_anchor.py"
DEMO = ROOT / "models" / "seem_tiny_demo.safetensors"


def load_tool():
    """The script as a module; it imports its sibling ``_variant_args`` as a script would."""
    if str(TOOL.parent) not in sys.path:
        sys.path.insert(0, str(TOOL.parent))
    spec = importlib.util.spec_from_file_location("memory_anchor_study", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_weight_zero_is_the_benchmarks_video_protocol_and_a_weight_changes_it():
    tool = load_tool()
    segmenter = Segmenter.from_pretrained(DEMO)
    clip = render_clip(seed=11, n_frames=5, split="val")
    target = max(clip.frames[0].thing_segments, key=lambda s: s.area)
    truth = clip.frames[0].segment_ids == target.id
    benchmark = Benchmark(segmenter, split="val", progress=False)
    protocol = benchmark._propagate(clip.frames, truth, use_memory=True)
    encoded = [segmenter.encode_image(frame.image) for frame in clip.frames]
    plain = tool.follow_anchored(segmenter, encoded, clip.frames[0].image, truth, 0.0)
    assert all(np.array_equal(a, b) for a, b in zip(plain, protocol, strict=True))
    anchored = tool.follow_anchored(segmenter, encoded, clip.frames[0].image, truth, 1.0)
    assert np.array_equal(anchored[0], plain[0])  # the same first click
    assert len(anchored) == len(plain)


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
