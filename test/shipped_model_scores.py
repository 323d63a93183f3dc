"""A shipped model's small val benchmark beside random weights of its config: the shared check
that its weights learned something (test_demo_model.py, test_student_model.py); and the val
phrases naming things, encoded once, that the grounding tests score two ways."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seem_ros.data import SceneDataset
from seem_ros.data.scene import ReferringExpression, Scene
from seem_ros.eval.benchmark import Benchmark, BenchmarkSize, flatten
from seem_ros.prompts import ObjectPrompt, PromptSet
from seem_ros.segmenter import EncodedImage, Segmenter

SMALL = BenchmarkSize(
    scenes=4,
    objects_per_scene=2,
    phrases_per_scene=2,
    clips=1,
    clip_frames=6,
    objects_per_clip=1,
    cases=4,
    max_clicks=3,
)


def trained_and_random_scores(
    weights: Path, sections: tuple[str, ...], frame_size: int | None = None
) -> tuple[dict[str, float], dict[str, float]]:
    """(the shipped model's flattened metrics, those of random weights of its config)."""
    trained = Segmenter.from_pretrained(weights)
    random = Segmenter.from_config(trained.card.config.name, seed=0)

    def run(segmenter: Segmenter) -> dict[str, float]:
        benchmark = Benchmark(
            segmenter, split="val", size=SMALL, frame_size=frame_size, progress=False
        )
        return flatten(benchmark.run(sections))

    return run(trained), run(random)


@dataclass(frozen=True)
class ThingPhrases:
    """One val scene's phrases naming things, encoded, as one prompt set (a slot per phrase)."""

    scene: Scene
    phrases: list[ReferringExpression]
    encoded: EncodedImage
    prompts: PromptSet

    def truth(self, slot: int) -> np.ndarray:
        return self.scene.segment(self.phrases[slot].target_id).mask


def val_thing_phrases(segmenter: Segmenter, scenes: int = 12) -> Iterator[ThingPhrases]:
    data = SceneDataset("val", scenes, size=(256, 256))
    for index in range(len(data)):
        scene = data[index]
        phrases = [p for p in scene.phrases if scene.segment(p.target_id).is_thing]
        prompts = PromptSet(objects=[ObjectPrompt(text=p.text) for p in phrases])
        yield ThingPhrases(scene, phrases, segmenter.encode_image(scene.image), prompts)


def iou(truth: np.ndarray, mask: np.ndarray) -> float:
    return float((truth & mask).sum() / max((truth | mask).sum(), 1))
