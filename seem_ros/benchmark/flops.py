"""How much arithmetic the model does, and how much the machine can do.

Model FLOPs are counted, not estimated: PyTorch's ``FlopCounterMode`` intercepts every
matmul / convolution / attention kernel of one ``encode`` and one ``decode`` call and adds
2 x multiply-accumulates for each (element-wise ops, norms and softmax are not counted, so
this is the usual "GFLOPs" of papers). The machine's peak is measured in the same run as the
best of several large FP32 matrix products.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ..model.build import AnySEEM
from ..model.prompt_tensors import TensorBundle


def count_gflops(
    model: AnySEEM, prompts: TensorBundle[np.ndarray], input_hw: tuple[int, int]
) -> dict[str, float]:
    """GFLOPs of one encode of an ``input_hw`` input and of one decode of ``prompts``:
    {"encode": .., "decode": ..}."""
    image = torch.zeros(1, 3, *input_hw)
    # the counter's module tracker hooks every module input that requires grad; the official
    # decoder passes views of parameters between modules, so count with gradients off
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        with torch.no_grad():
            with FlopCounterMode(display=False) as encode_counter:
                features = model.encode(image)
            with FlopCounterMode(display=False) as decode_counter:
                model.decode(features, prompts.to_torch())
    finally:
        for parameter, flag in zip(model.parameters(), flags):
            parameter.requires_grad_(flag)
    return {
        "encode": encode_counter.get_total_flops() / 1e9,
        "decode": decode_counter.get_total_flops() / 1e9,
    }


def measure_matmul_gflops(*, size: int = 1024, repeats: int = 10) -> float:
    """Best sustained GFLOP/s of an FP32 ``size x size`` matmul with PyTorch's threads."""
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(size, size, generator=generator)
    b = torch.rand(size, size, generator=generator)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9
