"""detectron2.structures stand-ins: ImageList (used at inference), and placeholders."""

from __future__ import annotations

import torch
from torch.nn import functional as F


class ImageList:
    """A batch of images padded to one size (bottom/right), as detectron2's ImageList.

    ``from_tensors`` pads every (..., H, W) tensor to the largest H, W of the list, rounded up
    to ``size_divisibility``, with ``pad_value``; ``image_sizes`` keeps each unpadded (H, W).
    """

    def __init__(self, tensor: torch.Tensor, image_sizes):
        self.tensor = tensor
        self.image_sizes = image_sizes

    def __len__(self) -> int:
        return len(self.image_sizes)

    def __getitem__(self, idx):
        size = self.image_sizes[idx]
        return self.tensor[idx, ..., : size[0], : size[1]]

    def to(self, *args, **kwargs) -> ImageList:
        return ImageList(self.tensor.to(*args, **kwargs), self.image_sizes)

    @property
    def device(self):
        return self.tensor.device

    @staticmethod
    def from_tensors(
        tensors, size_divisibility: int = 0, pad_value: float = 0.0, padding_constraints=None
    ) -> ImageList:
        assert len(tensors) > 0 and isinstance(tensors, (tuple, list))
        image_sizes = [(int(t.shape[-2]), int(t.shape[-1])) for t in tensors]
        max_h = max(s[0] for s in image_sizes)
        max_w = max(s[1] for s in image_sizes)
        if padding_constraints is not None and padding_constraints.get("size_divisibility"):
            size_divisibility = padding_constraints["size_divisibility"]
        if size_divisibility > 1:
            stride = size_divisibility
            max_h = (max_h + stride - 1) // stride * stride
            max_w = (max_w + stride - 1) // stride * stride
        if len(tensors) == 1:
            h, w = image_sizes[0]
            padding = [0, max_w - w, 0, max_h - h]
            src = tensors[0]
            if src.dtype == torch.bool:  # F.pad has no bool kernel
                batched = F.pad(src.to(torch.uint8), padding, value=int(pad_value)).bool()
            else:
                batched = F.pad(src, padding, value=pad_value)
            batched = batched.unsqueeze(0)
        else:
            shape = [len(tensors), *tensors[0].shape[:-2], max_h, max_w]
            batched = tensors[0].new_full(shape, pad_value)
            for img, pad_img in zip(tensors, batched):
                pad_img[..., : img.shape[-2], : img.shape[-1]].copy_(img)
        return ImageList(batched.contiguous(), image_sizes)


class _Unavailable:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} is not available in the parity harness")


class Boxes(_Unavailable):
    pass


class Instances(_Unavailable):
    pass


class BitMasks(_Unavailable):
    pass


class ROIMasks(_Unavailable):
    pass


class BoxMode(_Unavailable):
    pass
