"""The model card: the JSON written beside every weight file."""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import ModelConfig

CARD_FORMAT = "seem_ros.model_card/1"


@dataclass
class ModelCard:
    """What a weight file is: its architecture, vocabulary, how it was made and how good it is."""

    config: ModelConfig
    vocabulary: list[str] = field(default_factory=list)
    stuff_classes: list[str] = field(default_factory=list)
    trained: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""
    # precomputed class-name embeddings: [{"names": [...], "shape": [rows, E], "float32_base64":
    # "..."}], rows = what Segmenter.class_embeddings returns for exactly those names
    class_embeddings: list[dict[str, Any]] = field(default_factory=list)

    def add_class_embeddings(self, names: list[str], embeddings: np.ndarray) -> None:
        """Store ``embeddings`` (rows, E) for the class-name list ``names`` in the card."""
        array = np.ascontiguousarray(embeddings, dtype=np.float32)
        self.class_embeddings.append(
            {
                "names": list(names),
                "shape": list(array.shape),
                "float32_base64": base64.b64encode(array.tobytes()).decode("ascii"),
            }
        )

    def class_embedding_cache(self) -> dict[tuple[str, ...], np.ndarray]:
        """The stored class-name embeddings, keyed by their name lists."""
        cache = {}
        for entry in self.class_embeddings:
            raw = base64.b64decode(entry["float32_base64"])
            array = np.frombuffer(raw, dtype=np.float32).reshape(entry["shape"]).copy()
            cache[tuple(entry["names"])] = array
        return cache

    def to_json(self) -> str:
        data = asdict(self)
        data["format"] = CARD_FORMAT
        return json.dumps(data, indent=2, sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        data = json.loads(text)
        if data.pop("format", None) != CARD_FORMAT:
            raise ValueError(f"not a {CARD_FORMAT} model card")
        data["config"] = ModelConfig.from_dict(data["config"])
        return cls(**data)

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: Path) -> ModelCard:
        return cls.from_json(Path(path).read_text())
