"""Wall-clock timing with warm-up and robust statistics (median, 10th and 90th percentile)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    median_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            key: round(value, 4) if isinstance(value, float) else value
            for key, value in asdict(self).items()
        }


def measure(call: Callable[[], object], *, warmup: int, repeats: int) -> Timing:
    """Run ``call`` ``warmup`` times untimed, then ``repeats`` times timed."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    for _ in range(warmup):
        call()
    samples = np.empty(repeats)
    for index in range(repeats):
        start = time.perf_counter()
        call()
        samples[index] = (time.perf_counter() - start) * 1000.0
    p10, median, p90 = np.percentile(samples, [10, 50, 90])
    return Timing(float(median), float(p10), float(p90), repeats)
