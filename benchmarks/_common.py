"""Setup shared by the benchmark scripts: the repository on ``sys.path``, frame sizes,
the procedural sample clip and the host description stored with every result.

Importing this module puts the repository root first on ``sys.path``, so the scripts run
from a checkout without installing ``seem_ros``; import it before any ``seem_ros`` module.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from seem_ros.data import render_clip, scene_seed  # noqa: E402
from seem_ros.data.clips import Clip  # noqa: E402


def parse_size(text: str) -> tuple[int, int]:
    """``"480x640"`` -> (480, 640); an argparse type."""
    height, _, width = text.partition("x")
    try:
        return int(height), int(width)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HEIGHTxWIDTH, got {text!r}") from None


def sample_clip(frames: int, size: tuple[int, int]) -> Clip:
    """The test split's first procedural clip, ``frames`` long, at ``size`` (H, W)."""
    seed = scene_seed("test", 0, stream="sample-clip")
    return render_clip(seed, frames, size=size, split="test")


def host_info(threads: int) -> dict[str, Any]:
    """Threads used and the machine's load, CPUs and platform, for the result JSON."""
    return {
        "threads": threads,
        "load_average": list(os.getloadavg()),
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
    }


def save_results(path: Path | None, results: dict[str, Any]) -> None:
    """Write ``results`` as indented JSON to ``path`` (the scripts' ``--json``); None: nothing."""
    if path is not None:
        path.write_text(json.dumps(results, indent=2) + "\n")
