"""The shipped demo model computes what it computed when its weights were released.

Recorded values (``data/demo_forward_reference.json``) pin the decoder's function: every
prompt path (positive and negative clicks, box, scribble, referring text, memory, generic
queries, deep supervision) on a fixed sample scene. A refactor of the model code that changes
the shipped model's answers fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seem_ros.model.build import load_model
from seem_ros.model_zoo import DEMO_MODEL_NAME

HERE = Path(__file__).resolve().parent
DEMO = HERE.parent / "models" / DEMO_MODEL_NAME
REFERENCE = HERE / "data" / "demo_forward_reference.json"
PICKS = 48  # recorded values per output, at fixed positions


def _fixed_scene() -> np.ndarray:
    """A 240x320 RGB image of flat shapes (drawn here, so the test does not depend on the
    procedural world's renderer)."""
    import cv2

    image = np.full((240, 320, 3), 90, np.uint8)
    image[150:, :] = (150, 120, 80)
    cv2.circle(image, (80, 90), 40, (220, 30, 30), -1)
    cv2.rectangle(image, (170, 40), (260, 130), (30, 30, 220), -1)
    cv2.fillPoly(image, [np.array([[60, 220], [140, 220], [100, 150]])], (30, 200, 40))
    cv2.circle(image, (250, 190), 30, (220, 30, 30), 8)
    return image


@torch.inference_mode()
def reference_outputs() -> dict[str, np.ndarray]:
    """The demo model's raw outputs (encode + decode, with deep supervision) on fixed prompts."""
    from seem_ros.prompt_encoding import PromptLayout, build_prompt_tensors
    from seem_ros.prompts import Box, MemoryPrompt, ObjectPrompt, Points, ReferringText, Scribble
    from seem_ros.transforms import ResizeTransform

    model, _ = load_model(DEMO)
    image = _fixed_scene()
    transform = ResizeTransform(image.shape[0], image.shape[1], model.config.image_size)
    layout = PromptLayout.of(model)
    memory_mask = np.zeros(image.shape[:2], bool)
    memory_mask[40:120, 60:150] = True
    objects = [
        ObjectPrompt(points=Points(np.array([[100.5, 80.5], [150.5, 170.5]]), np.array([1, 0]))),
        ObjectPrompt(box=Box(30, 40, 140, 150)),
        ObjectPrompt(
            scribbles=(Scribble(np.array([[60.0, 200.0], [120.0, 210.0], [180.0, 190.0]])),)
        ),
        ObjectPrompt(text=ReferringText("the red star")),
        ObjectPrompt(
            points=Points.single(90.5, 70.5),
            memory=MemoryPrompt(mask=memory_mask, tokens=np.full((2, 64), 0.05, np.float32)),
        ),
    ]
    tensors = build_prompt_tensors(
        objects,
        transform,
        layout,
        embed_text=lambda text: model.encode_text([text])[0].numpy(),
        embed_reference=lambda region: np.zeros(layout.dim, np.float32),
    ).to_torch()
    features = model.encode(torch.from_numpy(transform.image_to_input(image)[None]))
    outputs = model.decode(features, tensors, with_aux=True)
    flat = {f"feature{i}": f for i, f in enumerate(features)}
    for key, value in outputs.items():
        if key == "aux":
            for layer, aux in enumerate(value):
                flat |= {f"aux{layer}_{k}": v for k, v in aux.items()}
        else:
            flat[key] = value
    return {k: v.float().numpy() for k, v in flat.items()}


def summarise(outputs: dict[str, np.ndarray]) -> dict[str, dict[str, object]]:
    summary = {}
    for key, value in sorted(outputs.items()):
        flat = value.reshape(-1).astype(np.float64)
        picks = np.linspace(0, flat.size - 1, min(PICKS, flat.size)).astype(int)
        summary[key] = {
            "shape": list(value.shape),
            "sum": float(flat.sum()),
            "abs_sum": float(np.abs(flat).sum()),
            "picks": flat[picks].tolist(),
        }
    return summary


def test_demo_model_outputs_match_the_recorded_values():
    expected = json.loads(REFERENCE.read_text())
    actual = summarise(reference_outputs())
    assert sorted(actual) == sorted(expected)
    for key, want in expected.items():
        got = actual[key]
        assert got["shape"] == want["shape"], key
        scale = max(1.0, want["abs_sum"] / max(1, int(np.prod(want["shape"]))))
        np.testing.assert_allclose(got["picks"], want["picks"], rtol=1e-4, atol=1e-4 * scale)
        assert got["abs_sum"] == pytest.approx(want["abs_sum"], rel=1e-5), key
        assert got["sum"] == pytest.approx(want["sum"], rel=1e-4, abs=1e-3 * scale), key


if __name__ == "__main__":  # re-record (only when the shipped weights change, on purpose)
    REFERENCE.parent.mkdir(exist_ok=True)
    REFERENCE.write_text(json.dumps(summarise(reference_outputs()), indent=1) + "\n")
