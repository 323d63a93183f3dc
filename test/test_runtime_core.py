"""The runtime core installs and runs alone: a fresh venv with ``pip install -e .`` (no extras)
segments an image with the demo model, its CLI lists every command, and the commands that
need an extra say which one instead of failing with a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
EXTRA_PACKAGES = ("onnx", "onnxruntime", "rosbags", "rclpy", "matplotlib", "segment_anything")


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("core") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            "torch==2.14.1",
            "torchvision==0.29.1",
            "-e",
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    return venv


def run(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "seem-ros"), *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_the_core_has_none_of_the_extras(core_venv):
    names = list(EXTRA_PACKAGES)
    code = f"import importlib.util as u; print([m for m in {names} if u.find_spec(m)])"
    found = subprocess.run(
        [str(core_venv / "bin" / "python"), "-c", code], capture_output=True, text=True
    )
    assert found.stdout.strip() == "[]"


@pytest.mark.slow
def test_the_core_segments_with_the_demo_model(core_venv, tmp_path):
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (96, 128, 3), np.uint8))
    result = run(core_venv, "segment", str(image), "--classes", "circle;square",
                 "--point", "40,40", "--out", str(tmp_path / "out.png"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.png").is_file()
    assert run(core_venv, "--help").returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (("export", "--out", "graphs"), "seem_ros[onnx]"),
        (("bag", str(REPO / "seem_ros/data/samples/sample_scene.mcap"), "out"), "seem_ros[bags]"),
    ],
)
def test_commands_that_need_an_extra_name_it(core_venv, tmp_path, args, hint):
    result = subprocess.run(
        [str(core_venv / "bin" / "seem-ros"), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 2
    assert hint in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_the_readmes_main_job_runs_on_the_core(core_venv, tmp_path):
    result = run(core_venv, "demo", "--out", str(tmp_path / "demo_out"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "demo_out" / "summary.png").is_file()
