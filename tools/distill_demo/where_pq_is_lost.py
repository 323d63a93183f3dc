"""Where a model's PQ is lost on the procedural world: every ground-truth segment is matched to
the model's panoptic segments and counted as found, wrongly classed, poorly cut (IoU 0.2-0.5)
or missed; for each missed thing, the query whose raw mask fits it best says why it was not
kept (its class probabilities and mask).

    python tools/distill_demo/where_pq_is_lost.py \
        checkpoints/tiny_stage6/seem_tiny_demo.safetensors \
        checkpoints/distill_demo/student_nano.safetensors --scenes 25
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np

from seem_ros.eval.benchmark import Benchmark, BenchmarkSize
from seem_ros.postprocess import sigmoid, softmax
from seem_ros.prompts import ClassNames, PromptSet
from seem_ros.segmenter import Segmenter


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def diagnose(model: Path, split: str, scenes: int, frame_size: int) -> None:
    segmenter = Segmenter.from_pretrained(model)
    benchmark = Benchmark(
        segmenter, split=split, size=BenchmarkSize(scenes=scenes), frame_size=frame_size
    )
    vocabulary = list(benchmark.vocabulary)
    stuff = {name.lower() for name in segmenter.card.stuff_classes}
    prompt_set = PromptSet(classes=ClassNames(tuple(vocabulary)))
    outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
    misses: list[str] = []
    for index in range(scenes):
        scene = benchmark.scenes[index]
        encoded = segmenter.encode_image(scene.image)
        result = segmenter.decode(encoded, prompt_set, task="panoptic")
        segments = [(result.instance_ids == k, i.label) for k, i in enumerate(result.instances, 1)]
        raw = segmenter.decode_outputs(encoded, prompt_set)
        query_mask_probs = sigmoid(encoded.transform.logits_to_image(raw["object_masks"][0]))
        query_masks = query_mask_probs > 0.5
        query_probs = softmax(segmenter.classify(raw["object_embeds"][0], vocabulary))
        for segment in scene.segments:
            kind = "stuff" if segment.category.lower() in stuff else "thing"
            truth = scene.segment_ids == segment.id
            best, label = max(((iou(m, truth), lab) for m, lab in segments), default=(0.0, ""))
            if best > 0.5:
                outcomes[kind, "found" if label == segment.category else "wrong class"] += 1
                continue
            outcomes[kind, "poorly cut" if best > 0.2 else "missed"] += 1
            if best > 0.2 or kind == "stuff":
                continue
            fits = [iou(m, truth) for m in query_masks]
            query = int(np.argmax(fits))
            probs = query_probs[query]
            top = int(probs[:-1].argmax())
            right = vocabulary.index(segment.category)
            mask = query_masks[query]
            # the panoptic score is p(class) x the mean mask probability inside the mask
            quality = float(query_mask_probs[query][mask].mean()) if mask.any() else 0.0
            misses.append(
                f"  {segment.category:8s} {int(truth.sum()):5d} px: best query IoU "
                f"{fits[query]:.2f}, says {vocabulary[top]} p={probs[top]:.2f} "
                f"({segment.category} p={probs[right]:.2f}, no object p={probs[-1]:.2f}); "
                f"mask quality {quality:.2f}, score {probs[top] * quality:.2f}"
            )
    print(f"{model.name} ({split}, {scenes} scenes, {frame_size} px frames)")
    for (kind, outcome), count in sorted(outcomes.items()):
        print(f"  {kind:5s} {outcome:12s} {count}")
    print("missed things:")
    print("\n".join(misses) or "  none")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--split", default="val", choices=("val", "test"))
    parser.add_argument("--scenes", type=int, default=25)
    parser.add_argument("--frame-size", type=int, default=256, help="the teacher's input size")
    args = parser.parse_args()
    for model in args.models:
        diagnose(model, args.split, args.scenes, args.frame_size)


if __name__ == "__main__":
    main()
