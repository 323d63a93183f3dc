"""Memory tied to the first answer: J&F of the video protocol when each followed frame's
memory tokens are blended with the tokens of the click's answer (as SAM 2 and XMem keep the
prompted frame in memory), against the tokens carried as they are (weight 0, the benchmark).

A followed object's memory tokens describe what its last mask held, so a mask that took in a
strip of a look-alike neighbour describes the neighbour a little more in the next frame: the
drift behind several lost objects at 640x480. The blend ``(1 - w) * new + w * first`` is done
here, outside the library; every weight sees the same encoded frames and the same first click.

    python tools/robustness/memory_anchor.py models/seem_tiny_demo.safetensors \
        --split val --clips 40 --weights 0 0.5 0.7 1 --json memory_anchor.json
"""

from __future__ import annotations

import json

import numpy as np
from _variant_args import (  # a sibling module: run this file as a script
    parse_study_args,
    variant_study_parser,
)
from tqdm import tqdm

from seem_ros.eval.benchmark import BenchmarkSize, _most_interior_click
from seem_ros.eval.metrics import JfAccumulator
from seem_ros.eval.robustness import VariantWorld
from seem_ros.prompts import MemoryPrompt, ObjectPrompt, ReferenceRegion, as_prompt_set
from seem_ros.segmenter import EncodedImage, Segmenter


def follow_anchored(
    segmenter: Segmenter,
    encoded: list[EncodedImage],
    first_frame: np.ndarray,
    first_truth: np.ndarray,
    weight: float,
) -> list[np.ndarray]:
    """The video protocol (a click on frame 0, then memory and the frame-0 reference region)
    with each carried memory's tokens ``weight`` of the click answer's."""
    click = ObjectPrompt(points=_most_interior_click(first_truth))
    first = segmenter.decode(encoded[0], as_prompt_set(click)).instances[0]
    assert first.memory is not None and first.memory.tokens is not None
    anchor = first.memory.tokens
    reference = ReferenceRegion(first_frame, first.mask) if first.mask.any() else None
    memory, masks = first.memory, [first.mask]
    for frame in encoded[1:]:
        prompt = ObjectPrompt(memory=memory, reference=reference)
        answer = segmenter.decode(frame, as_prompt_set(prompt)).instances[0]
        masks.append(answer.mask)
        assert answer.memory is not None and answer.memory.tokens is not None
        tokens = (1.0 - weight) * answer.memory.tokens + weight * anchor
        memory = MemoryPrompt(mask=answer.memory.mask, tokens=tokens.astype(np.float32))
    return masks


def variant_study(
    segmenter: Segmenter, variant: str, split: str, clips: int, weights: list[float]
) -> dict[str, object]:
    """Mean J&F per weight (``weights`` holds 0) over the variant's first ``clips`` clips, and
    per weight how many objects gained or lost more than 0.01 against weight 0."""
    size = BenchmarkSize()
    world = VariantWorld(variant, split, segmenter.image_size, size.clip_frames)
    scores = {weight: JfAccumulator() for weight in weights}
    for index in tqdm(range(clips), desc=f"{variant} clips"):
        clip = world.clip(index)
        encoded = [segmenter.encode_image(frame.image) for frame in clip.frames]
        things = sorted(clip.frames[0].thing_segments, key=lambda s: -s.area)
        for thing in things[: size.objects_per_clip]:
            truth = [frame.segment_ids == thing.id for frame in clip.frames]
            for weight in weights:
                masks = follow_anchored(segmenter, encoded, clip.frames[0].image, truth[0], weight)
                scores[weight].add(masks, truth)
    plain = np.array([s["jf"] for s in scores[0.0].scores])
    report: dict[str, object] = {"objects": int(plain.size)}
    for weight, accumulator in scores.items():
        change = np.array([s["jf"] for s in accumulator.scores]) - plain
        report[f"w{weight:g}"] = {
            "jf": round(accumulator.jf, 4),
            "gained": int((change > 0.01).sum()),
            "lost": int((change < -0.01).sum()),
        }
    return report


def main() -> None:
    parser = variant_study_parser(__doc__.split("\n\n")[0])
    parser.add_argument(
        "--weights",
        nargs="+",
        type=float,
        default=[0.0, 0.5],
        help="shares of the first answer's tokens; 0 is the benchmark's protocol (default: 0 0.5)",
    )
    args = parse_study_args(parser)
    segmenter = Segmenter.from_pretrained(args.model)
    weights = sorted(set(args.weights) | {0.0})
    report = {
        "model": str(args.model),
        "split": args.split,
        "clips": args.clips,
        **{v: variant_study(segmenter, v, args.split, args.clips, weights) for v in args.variants},
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
