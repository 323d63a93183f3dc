"""PyTorch eager backend: the reference every other backend is compared with."""

from __future__ import annotations

import numpy as np
import torch

from ..model.prompt_tensors import PromptTensors
from ..model.seem import SEEM
from .base import DECODER_OUTPUTS, OPTIONAL_DECODER_OUTPUTS, Engine, Features


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, model: SEEM, *, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.precision = "fp32"

    @torch.inference_mode()
    def encode(self, image: np.ndarray) -> Features:
        tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).to(self.device)
        return tuple(f.cpu().numpy() for f in self.model.encode(tensor))

    @torch.inference_mode()
    def decode(
        self, features: Features, prompts: PromptTensors[np.ndarray]
    ) -> dict[str, np.ndarray]:
        feats = tuple(torch.from_numpy(np.asarray(f)).to(self.device) for f in features)
        outputs = self.model.decode(feats, prompts.to_torch(self.device))
        return {
            name: outputs[name].float().cpu().numpy()
            for name in (*DECODER_OUTPUTS, *OPTIONAL_DECODER_OUTPUTS)
            if name in outputs
        }
