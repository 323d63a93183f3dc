"""A few fixed sample scenes and a short clip, in memory or written to disk.

Samples come from the test split's own "sample" seed stream, so they are the same on
every machine and never overlap training data. Files are small and generated on demand
(`write_samples`), nothing is stored in the repository.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from seem_ros.data.clips import Clip, render_clip
from seem_ros.data.render import render_scene
from seem_ros.data.scene import Scene
from seem_ros.data.splits import scene_seed

SAMPLE_SPLIT = "test"
SAMPLE_SCENE_COUNT = 4
SAMPLE_CLIP_FRAMES = 8


def sample_scenes(size: tuple[int, int] = (256, 256)) -> list[Scene]:
    """The bundled sample scenes, rendered in memory."""
    return [
        render_scene(scene_seed(SAMPLE_SPLIT, i, stream="sample"), size=size, split=SAMPLE_SPLIT)
        for i in range(SAMPLE_SCENE_COUNT)
    ]


def sample_clip(size: tuple[int, int] = (256, 256)) -> Clip:
    """The bundled sample clip, rendered in memory."""
    seed = scene_seed(SAMPLE_SPLIT, 0, stream="sample-clip")
    return render_clip(seed, n_frames=SAMPLE_CLIP_FRAMES, size=size, split=SAMPLE_SPLIT)


def scene_ground_truth(scene: Scene) -> dict[str, Any]:
    """JSON-ready ground truth of a scene; masks live in the matching segment-id image."""
    return {
        "seed": scene.seed,
        "split": scene.split,
        "height": scene.hw[0],
        "width": scene.hw[1],
        "segments": [
            {
                "id": s.id,
                "category": s.category,
                "is_thing": s.is_thing,
                "colour": s.colour,
                "size": s.size,
                "bbox": list(s.bbox),
                "area": s.area,
            }
            for s in scene.segments
        ],
        "phrases": [{"text": p.text, "target_id": p.target_id} for p in scene.phrases],
    }


def write_samples(out_dir: str | Path, size: tuple[int, int] = (256, 256)) -> Path:
    """Write sample scenes and the sample clip as PNGs plus `ground_truth.json`; return its path.

    Layout: scene_<i>.png (RGB) and scene_<i>_ids.png (16-bit segment ids) per scene,
    clip/frame_<t>.png and clip/ids_<t>.png per clip frame.
    """
    out = Path(out_dir)
    (out / "clip").mkdir(parents=True, exist_ok=True)
    scenes = []
    for i, scene in enumerate(sample_scenes(size)):
        entry = _write_frame(scene, out, f"scene_{i}.png", f"scene_{i}_ids.png")
        scenes.append(entry)
    clip = sample_clip(size)
    frames = [
        _write_frame(frame, out, f"clip/frame_{t:02d}.png", f"clip/ids_{t:02d}.png")
        for t, frame in enumerate(clip)
    ]
    manifest = {
        "scenes": scenes,
        "clip": {
            "seed": clip.seed,
            "occluder_id": clip.occluder_id,
            "occludee_id": clip.occludee_id,
            "tracks": {str(k): vars(track) for k, track in clip.tracks.items()},
            "frames": frames,
        },
    }
    path = out / "ground_truth.json"
    path.write_text(json.dumps(manifest, indent=1))
    return path


def _write_frame(scene: Scene, out: Path, image_name: str, ids_name: str) -> dict[str, Any]:
    if scene.segment_ids.max() > np.iinfo(np.uint16).max:
        raise ValueError("segment ids do not fit a 16-bit PNG")
    _imwrite(out / image_name, cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR))
    _imwrite(out / ids_name, scene.segment_ids.astype(np.uint16))
    return {"image": image_name, "segment_ids": ids_name, **scene_ground_truth(scene)}


def _imwrite(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")
