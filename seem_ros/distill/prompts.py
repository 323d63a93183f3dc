"""The teacher's simulated prompts, rebuilt as the prompts a student is given."""

from __future__ import annotations

import numpy as np

from ..prompts import Box, MemoryPrompt, ObjectPrompt, Points, Scribble
from .record import PromptedAnswer


def answer_prompt(answer: PromptedAnswer, memory: MemoryPrompt | None = None) -> ObjectPrompt:
    """The prompt the teacher answered (``memory``: the student's own earlier answer, for a
    second click round)."""
    if answer.kind == "click":
        return ObjectPrompt(
            points=Points(answer.points.astype(np.float64), answer.labels.astype(np.int64)),
            memory=memory,
        )
    if answer.kind == "box":
        (x0, y0), (x1, y1) = answer.points.astype(np.float64)
        return ObjectPrompt(box=Box(x0, y0, x1, y1))
    if answer.kind == "scribble":
        return ObjectPrompt(scribbles=(Scribble(answer.points.astype(np.float64)),))
    return ObjectPrompt(text=answer.text)
