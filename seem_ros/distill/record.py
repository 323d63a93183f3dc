"""What the teacher pass stores per frame, and how it is packed into flat numpy arrays.

Everything lives in the *frame's* coordinates, never the teacher's input grid: masks are on a
frame-aligned grid whose long side is ``mask_size`` (:func:`frame_grid_hw`), clicks and boxes in
frame pixels. A student with another input size, padding or aspect rule can then learn from any
teacher's labels.

A record packs into ``{name: ndarray}`` (:meth:`FrameLabel.to_arrays`), so a shard is a plain
``.npz`` file: no pickles, readable from any language.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import cv2
import numpy as np

ANSWER_KINDS = ("click", "box", "scribble", "phrase")
LOGIT_CLIP = 20.0


def frame_grid_hw(height: int, width: int, mask_size: int) -> tuple[int, int]:
    """The frame-aligned mask grid: long side ``mask_size``, the aspect of the frame."""
    long_side = max(height, width)
    scale = mask_size / long_side
    return max(1, round(height * scale)), max(1, round(width * scale))


@dataclass
class PromptedAnswer:
    """One simulated prompt and the teacher's answer to it.

    ``points`` are frame pixels: clicks (every click so far, earlier rounds first), the box's
    two corners, or the scribble's polyline. ``memory_from`` is the index (in the frame's
    answer list) of the answer whose mask and memory this prompt also carries, -1 for none:
    a second click round refines the first. ``coverage`` is the answer mask the user would
    see, as area coverage on the frame grid (0..255).
    """

    kind: str
    points: np.ndarray  # (K, 2) float32
    labels: np.ndarray  # (K,) int8: 1 positive, 0 negative (clicks; 1 otherwise)
    coverage: np.ndarray  # (gh, gw) uint8
    score: float
    text: str = ""
    round: int = 1
    memory_from: int = -1
    seed_query: int = -1  # the teacher query whose mask the prompt was placed on

    def __post_init__(self) -> None:
        if self.kind not in ANSWER_KINDS:
            raise ValueError(f"unknown answer kind {self.kind!r}; known: {ANSWER_KINDS}")
        self.points = np.asarray(self.points, dtype=np.float32).reshape(-1, 2)
        self.labels = np.asarray(self.labels, dtype=np.int8).reshape(-1)
        self.coverage = np.asarray(self.coverage, dtype=np.uint8)

    @property
    def target(self) -> np.ndarray:
        """(gh, gw) float32 soft mask in [0, 1]."""
        return self.coverage.astype(np.float32) / 255.0


@dataclass
class FrameLabel:
    """The teacher's view of one frame: generic outputs for the vocabulary, prompted answers.

    ``query_logits`` hold the mask logits of the queries the teacher found anything with
    (objectness at least the labeller's threshold), ``query_probs`` their class distribution
    over the vocabulary plus the last column, "no object" (the official models' background),
    ``query_embeds`` their unit embeddings in the teacher's joint text space.
    """

    key: str
    source: str
    index: int
    stamp_ns: int
    image: np.ndarray  # (H, W, 3) uint8 RGB
    query_index: np.ndarray  # (Q,) int16
    query_logits: np.ndarray  # (Q, gh, gw) float16, clipped to +-LOGIT_CLIP
    query_probs: np.ndarray  # (Q, C + 1) float16
    query_embeds: np.ndarray  # (Q, E) float16
    answers: list[PromptedAnswer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.image = np.asarray(self.image, dtype=np.uint8)
        self.query_index = np.asarray(self.query_index, dtype=np.int16).reshape(-1)
        self.query_logits = np.clip(
            np.asarray(self.query_logits, dtype=np.float32), -LOGIT_CLIP, LOGIT_CLIP
        ).astype(np.float16)
        self.query_probs = np.asarray(self.query_probs, dtype=np.float16)
        self.query_embeds = np.asarray(self.query_embeds, dtype=np.float16)
        count = len(self.query_index)
        for name in ("query_logits", "query_probs", "query_embeds"):
            if len(getattr(self, name)) != count:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows, expected {count}")

    # ------------------------------------------------------------------ packing
    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Flat ``{prefix + name: array}``; the image is stored PNG-encoded."""
        ok, png = cv2.imencode(".png", cv2.cvtColor(self.image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise ValueError(f"frame {self.key}: PNG encoding failed")
        meta = {
            "key": self.key,
            "source": self.source,
            "index": int(self.index),
            "stamp_ns": int(self.stamp_ns),
            "answers": [
                {
                    "kind": a.kind,
                    "score": float(a.score),
                    "text": a.text,
                    "round": int(a.round),
                    "memory_from": int(a.memory_from),
                    "seed_query": int(a.seed_query),
                }
                for a in self.answers
            ],
        }
        arrays = {
            "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            "image_png": png.reshape(-1),
            "query_index": self.query_index,
            "query_logits": self.query_logits,
            "query_probs": self.query_probs,
            "query_embeds": self.query_embeds,
        }
        for i, answer in enumerate(self.answers):
            arrays[f"answer{i}_points"] = answer.points
            arrays[f"answer{i}_labels"] = answer.labels
            arrays[f"answer{i}_coverage"] = answer.coverage
        return {prefix + name: value for name, value in arrays.items()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray] | np.lib.npyio.NpzFile, prefix: str):
        meta = json.loads(bytes(np.asarray(arrays[prefix + "meta"])).decode())
        png = np.asarray(arrays[prefix + "image_png"])
        bgr = cv2.imdecode(png, cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"frame {meta['key']}: stored image does not decode")
        answers = [
            PromptedAnswer(
                kind=info["kind"],
                points=arrays[f"{prefix}answer{i}_points"],
                labels=arrays[f"{prefix}answer{i}_labels"],
                coverage=arrays[f"{prefix}answer{i}_coverage"],
                score=info["score"],
                text=info["text"],
                round=info["round"],
                memory_from=info["memory_from"],
                seed_query=info["seed_query"],
            )
            for i, info in enumerate(meta["answers"])
        ]
        return cls(
            key=meta["key"],
            source=meta["source"],
            index=meta["index"],
            stamp_ns=meta["stamp_ns"],
            image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
            query_index=arrays[prefix + "query_index"],
            query_logits=arrays[prefix + "query_logits"],
            query_probs=arrays[prefix + "query_probs"],
            query_embeds=arrays[prefix + "query_embeds"],
            answers=answers,
        )
