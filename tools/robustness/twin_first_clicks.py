"""First-click IoU of the video protocol's followed objects, with those that have an exact
look-alike in view (twins) on their own: the failure behind the 640x480 J&F on test (a click
on one of two touching identical shapes gives a mask holding both, and memory carries both
on). Cheaper than following the clips (one decode per object), so a recipe change can be
judged on many clips. The twins whose first click fails get a second round, as a user would
give it: a negative click on the look-alike the mask took in most (the previous mask fed back
as memory).

    python tools/robustness/twin_first_clicks.py models/seem_tiny_demo.safetensors \
        --split val --clips 40 --json twin_first_clicks.json
"""

from __future__ import annotations

import json

import numpy as np
from _variant_args import (  # a sibling module: run this file as a script
    parse_study_args,
    variant_study_parser,
)
from tqdm import tqdm

from seem_ros.data import Scene, Segment
from seem_ros.eval.benchmark import BenchmarkSize, _most_interior_click
from seem_ros.eval.robustness import VariantWorld
from seem_ros.prompts import ObjectPrompt, Points
from seem_ros.results import Instance
from seem_ros.segmenter import Segmenter
from seem_ros.train.episodes import twin_ids

FAILED_BELOW = 0.7
"""A first click whose IoU is below this starts a track that memory cannot repair."""


def iou(prediction: np.ndarray, truth: np.ndarray) -> float:
    union = np.logical_or(prediction, truth).sum()
    return float(np.logical_and(prediction, truth).sum() / union) if union else 1.0


def first_clicks(
    segmenter: Segmenter, variant: str, split: str, clips: int
) -> dict[str, float | int | None]:
    """One click at the most interior pixel of each followed object on its clip's frame 0 (as
    the benchmark's video protocol starts); mean IoU over all, over twins, and how many fail."""
    size = BenchmarkSize()
    world = VariantWorld(variant, split, segmenter.image_size, size.clip_frames)
    scores, twin_scores, failed_twins, corrected = [], [], [], []
    for index in tqdm(range(clips), desc=variant, unit="clip"):
        frame = world.clip(index).frames[0]
        twins = twin_ids(frame)
        followed = sorted(frame.thing_segments, key=lambda s: -s.area)[: size.objects_per_clip]
        for segment in followed:
            truth = frame.segment_ids == segment.id
            click = _most_interior_click(truth)
            first = segmenter.segment(frame.image, ObjectPrompt(points=click)).instances[0]
            score = iou(first.mask, truth)
            scores.append(score)
            if segment.id not in twins:
                continue
            twin_scores.append(score)
            if score < FAILED_BELOW:
                failed_twins.append(score)
                corrected.append(
                    iou(negative_click_on_twin(segmenter, frame, segment, click, first), truth)
                )
    return {
        "miou_first_click": float(np.mean(scores)),
        "objects": len(scores),
        "miou_first_click_twins": float(np.mean(twin_scores)) if twin_scores else None,
        "twins": len(twin_scores),
        f"failed_below_{FAILED_BELOW}": int(np.sum(np.array(scores) < FAILED_BELOW)),
        "failed_twins": len(failed_twins),
        "miou_failed_twins": float(np.mean(failed_twins)) if failed_twins else None,
        "miou_failed_twins_negative_click": float(np.mean(corrected)) if corrected else None,
    }


def negative_click_on_twin(
    segmenter: Segmenter, frame: Scene, segment: Segment, click: Points, first: Instance
) -> np.ndarray:
    """The second round's mask: ``click`` (the first round's, which gave ``first``) plus a
    negative click at the most interior pixel of the look-alike that ``first`` took in most."""
    look = (segment.category, segment.colour, segment.size)
    look_alikes = [
        other
        for other in frame.thing_segments
        if other.id != segment.id and (other.category, other.colour, other.size) == look
    ]
    twin = max(
        look_alikes, key=lambda other: int((first.mask & (frame.segment_ids == other.id)).sum())
    )
    negative = _most_interior_click(frame.segment_ids == twin.id)
    points = Points(np.concatenate([click.coords, negative.coords]), np.array([1, 0]))
    prompt = ObjectPrompt(points=points, memory=first.memory)
    return segmenter.segment(frame.image, prompt).instances[0].mask


def main() -> None:
    parser = variant_study_parser(__doc__.split("\n\n")[0])
    args = parse_study_args(parser)
    segmenter = Segmenter.from_pretrained(args.model)
    results = {
        "model": str(args.model),
        "weights_sha256": segmenter.card.weights_sha256,
        "split": args.split,
        "clips": args.clips,
        "variants": {v: first_clicks(segmenter, v, args.split, args.clips) for v in args.variants},
    }
    print(json.dumps(results["variants"], indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
