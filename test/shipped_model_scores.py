"""A shipped model's small val benchmark beside random weights of its config: the shared check
that its weights learned something (test_demo_model.py, test_student_model.py)."""

from __future__ import annotations

from pathlib import Path

from seem_ros.eval.benchmark import Benchmark, BenchmarkSize, flatten
from seem_ros.segmenter import Segmenter

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
