"""``seem-ros demo --out DIR``: the main job. Runs the demo model on the bundled sample scenes
(generic panoptic, referring, interactive clicks, text + click composition) and on a sample clip
with tracking; writes overlays, a contact sheet and ``summary.json`` with IoUs against the
ground truth. No ROS, no network."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

NAME = "demo"
HELP = "run the demo model on the bundled sample scenes and clip; write overlays + summary"
LOG = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder")
    parser.add_argument(
        "--model",
        type=Path,
        help="weights, .safetensors (default: $SEEM_ROS_MODEL, else the shipped demo model)",
    )


def _save(path: Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _interior_click(mask: np.ndarray) -> tuple[float, float]:
    depth = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return float(x) + 0.5, float(y) + 0.5


def _contact_sheet(
    tiles: list[tuple[str, np.ndarray]], columns: int = 4, side: int = 256
) -> np.ndarray:
    """Tiles in a grid, each with its caption (what was asked) in a strip below it."""
    from ..visualize import put_caption

    captioned = [
        put_caption(cv2.resize(tile, (side, side), interpolation=cv2.INTER_AREA), title)
        for title, tile in tiles
    ]
    tile_h = max(t.shape[0] for t in captioned)
    rows = (len(captioned) + columns - 1) // columns
    sheet = np.full((rows * (tile_h + 4), columns * (side + 4), 3), 255, np.uint8)
    for index, tile in enumerate(captioned):
        r, c = divmod(index, columns)
        y, x = r * (tile_h + 4), c * (side + 4)
        sheet[y : y + tile.shape[0], x : x + side] = tile
    return sheet


def run(args: argparse.Namespace) -> int:
    from ..data import class_names, render_composition_case, sample_clip, sample_scenes, scene_seed
    from ..engine.base import EngineError
    from ..model.weights import WeightsError
    from ..model_zoo import describe, load_segmenter
    from ..prompts import ClassNames, ObjectPrompt, Points, PromptSet
    from ..tracking import Tracker
    from ..visualize import draw_overlay

    try:
        segmenter = load_segmenter(args.model, allow_untrained=args.model is None)
    except (WeightsError, EngineError, FileNotFoundError) as error:
        LOG.error("%s", error)
        return 2
    if not segmenter.card.trained:
        print(
            "=" * 72
            + "\nWARNING: this model is UNTRAINED (random weights); masks are meaningless.\n"
            + "=" * 72
        )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    size = (segmenter.image_size, segmenter.image_size)
    classes = ClassNames(tuple(class_names()))
    summary: dict[str, Any] = {
        "model": {
            "config": segmenter.card.config.name,
            "trained": segmenter.card.trained,
            "description": describe(segmenter.card),
        },
        "scenes": [],
    }
    tiles: list[tuple[str, np.ndarray]] = []
    for index, scene in enumerate(tqdm(sample_scenes(size), desc="scenes")):
        _save(out / f"scene{index}_input.png", scene.image)
        encoded = segmenter.encode_image(scene.image)
        panoptic = segmenter.decode(encoded, PromptSet(classes=classes), task="panoptic")
        overlay = draw_overlay(scene.image, panoptic)
        _save(out / f"scene{index}_panoptic.png", overlay)
        tiles.append((f"scene {index}, panoptic: {'; '.join(classes.names)}", overlay))
        record: dict[str, Any] = {"index": index, "panoptic_segments": len(panoptic.instances)}
        thing_phrases = [p for p in scene.phrases if scene.segment(p.target_id).is_thing]
        if thing_phrases or scene.phrases:
            phrase = (thing_phrases or scene.phrases)[0]
            referred = segmenter.decode(encoded, ObjectPrompt(text=phrase.text))
            overlay = draw_overlay(scene.image, referred)
            _save(out / f"scene{index}_referring.png", overlay)
            tiles.append((f'scene {index}, refer: "{phrase.text}"', overlay))
            record["referring"] = {
                "text": phrase.text,
                "iou": _iou(referred.instances[0].mask, scene.instance_mask(phrase.target_id)),
            }
        largest = max(scene.thing_segments, key=lambda s: s.area)
        click_prompt = ObjectPrompt(
            points=Points.single(*_interior_click(largest.mask)), label="clicked"
        )
        clicked = segmenter.decode(encoded, click_prompt)
        overlay = draw_overlay(scene.image, clicked, prompts=click_prompt)
        _save(out / f"scene{index}_click.png", overlay)
        x, y = click_prompt.points.coords[0]  # type: ignore[union-attr]
        tiles.append((f"scene {index}, one positive click at ({x:.0f}, {y:.0f})", overlay))
        record["click"] = {"iou": _iou(clicked.instances[0].mask, largest.mask)}
        summary["scenes"].append(record)

    case = render_composition_case(scene_seed("val", 0, stream="composition"), "val", size=size)
    click = Points.single(case.click_xy[0] + 0.5, case.click_xy[1] + 0.5)
    composed_prompt = ObjectPrompt(text=case.text, points=click, label=f"{case.text} + click")
    composed = segmenter.segment(case.scene.image, composed_prompt)
    overlay = draw_overlay(case.scene.image, composed, prompts=composed_prompt)
    _save(out / "composition.png", overlay)
    tiles.append((f'text + click: "{case.text}" and the click', overlay))
    summary["composition"] = {
        "text": case.text,
        "iou": _iou(composed.instances[0].mask, case.scene.instance_mask(case.target_id)),
    }

    clip = sample_clip(size)
    tracker = Tracker(segmenter)
    first = clip.frames[0]
    followed = sorted(first.thing_segments, key=lambda s: -s.area)[:2]
    first_clicks = [
        ObjectPrompt(points=Points.single(*_interior_click(segment.mask))) for segment in followed
    ]
    for segment, prompt in zip(followed, first_clicks):
        tracker.add_object(prompt, label=segment.category)
    clip_dir = out / "clip"
    clip_dir.mkdir(exist_ok=True)
    ious: list[float] = []
    for t, frame in enumerate(tqdm(clip.frames, desc="clip")):
        result = tracker.step(frame.image, stamp=t)
        keys = [inst.track_id or 0 for inst in result.instances]
        overlay = draw_overlay(
            frame.image, result, colour_keys=keys, prompts=first_clicks if t == 0 else None
        )
        _save(clip_dir / f"frame{t:03d}.png", overlay)
        if t in (0, len(clip.frames) // 2, len(clip.frames) - 1):
            asked = "one click on each of 2 objects" if t == 0 else "tracked, no new prompt"
            tiles.append((f"clip frame {t}: {asked}", overlay))
        for inst, segment in zip(sorted(result.instances, key=lambda i: i.track_id or 0), followed):
            ious.append(_iou(inst.mask, frame.segment_ids == segment.id))
    summary["clip"] = {
        "frames": len(clip.frames),
        "objects": len(followed),
        "mean_iou": float(np.mean(ious)) if ious else 0.0,
    }
    _save(out / "summary.png", _contact_sheet(tiles))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"overlays -> {out}/ (contact sheet: {out / 'summary.png'})")
    return 0
