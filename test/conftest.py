"""Shared fixtures: a randomly initialised tiny model (issue-2 tests need no trained weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

# Tiny graphs run faster on one thread than on two contended ones.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_segmenter():
    from random_weights import activate_neutral_parts

    from seem_ros.segmenter import Segmenter

    segmenter = Segmenter.from_config("tiny", seed=0)
    activate_neutral_parts(segmenter.model)
    return segmenter


@pytest.fixture(scope="session")
def scene_image() -> np.ndarray:
    """A 240x320 RGB image with a few flat shapes (deterministic)."""
    import cv2

    image = np.full((240, 320, 3), 90, dtype=np.uint8)
    cv2.circle(image, (80, 90), 40, (220, 30, 30), -1)
    cv2.rectangle(image, (170, 40), (260, 130), (30, 30, 220), -1)
    cv2.fillPoly(image, [np.array([[60, 220], [140, 220], [100, 150]])], (30, 200, 40))
    return image
