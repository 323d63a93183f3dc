"""Coordinate and image transforms between the original image and the model input.

Our models see the image with its short side at ``size`` (its long side at most twice that),
aspect kept, padded at the bottom and right to multiples of the backbone's coarsest stride with
the pixel mean (zero after normalisation): objects keep the scale the model was trained at
whatever the camera's aspect. An exported graph has a fixed input; a frame of another shape is
fitted inside it and letterboxed instead. Keeping every conversion here means no other module
does resize arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from .model.config import ModelConfig


FITS = ("aspect", "box", "longest", "shortest")
OUR_INPUT_DIVISOR = 32
"""Our backbones' coarsest stride: input sides are padded to multiples of it."""
OUR_MAX_ASPECT = 2
"""Our models' input is at most this many times longer than its short side (wider frames are
resized to fit, so a panorama does not cost an unbounded encoder pass)."""


def downscale(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Anti-aliased shrink, close to ``INTER_AREA`` at a fraction of its cost.

    OpenCV's area filter is fast for integer factors but slow for fractional ones (a notable
    share of a camera frame's time; docs/performance.md). So: a bilinear step to the largest
    integer multiple of the target that the image still covers, then an integer-factor area
    filter, which
    averages the same footprint (mean difference ~0.15 grey levels on smooth images).
    """
    factor = int(min(image.shape[1] / width, image.shape[0] / height))
    if factor < 2:
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    if (image.shape[1], image.shape[0]) != (width * factor, height * factor):
        image = cv2.resize(image, (width * factor, height * factor), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class ResizeTransform:
    """Maps one original image (``height`` x ``width``) to the model input.

    ``fit`` says how:

    * ``"aspect"`` (our models): the shortest side becomes ``size``, or less where the longest
      would pass ``max_long``; the bottom and right are padded up to multiples of ``divisor``.
      With ``canvas_hw`` the input is padded further, to that shape (a training batch
      stacks frames of several shapes in the largest one's input; their scale is unchanged).
    * ``"box"``: the largest aspect-kept resize that fits inside ``canvas_hw``, padded to it
      (a fixed-shape exported graph fed a frame of another shape).
    * ``"longest"`` (the SAM ViT backbone): the longest side becomes ``size``, padded to
      ``size x size``.
    * ``"shortest"`` (the official FocalNet SEEM models): as ``"aspect"`` without the cap, and
      logits go back through the official post-processing (see :meth:`logits_to_image`).

    Padding is ``pad_value`` (the segmenter passes the pixel mean; zeros by default).
    """

    height: int
    width: int
    size: int
    fit: str = "longest"
    divisor: int = 1
    pad_value: tuple[float, float, float] = (0.0, 0.0, 0.0)
    max_long: int | None = None
    canvas_hw: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.fit not in FITS:
            raise ValueError(f"unknown fit {self.fit!r}; expected one of {FITS}")
        if self.fit == "box" and self.canvas_hw is None:
            raise ValueError('fit "box" needs canvas_hw')
        if self.canvas_hw is not None and self.fit not in ("box", "aspect"):
            raise ValueError('canvas_hw is given only with fit "box" or "aspect"')
        if self.fit == "aspect" and self.canvas_hw is not None:
            own_h, own_w = replace(self, canvas_hw=None).input_hw
            if own_h > self.canvas_hw[0] or own_w > self.canvas_hw[1]:
                raise ValueError(
                    f"canvas {self.canvas_hw} is smaller than the {(own_h, own_w)} input"
                )

    @property
    def scale(self) -> float:
        if self.fit == "box":
            assert self.canvas_hw is not None
            return min(self.canvas_hw[0] / self.height, self.canvas_hw[1] / self.width)
        if self.fit == "longest":
            return self.size / max(self.height, self.width)
        scale = self.size / min(self.height, self.width)
        if self.max_long is not None:
            scale = min(scale, self.max_long / max(self.height, self.width))
        return scale

    @property
    def resized_hw(self) -> tuple[int, int]:
        resized = (
            max(1, round(self.height * self.scale)),
            max(1, round(self.width * self.scale)),
        )
        if self.canvas_hw is not None:  # rounding must not spill over the canvas
            return (min(resized[0], self.canvas_hw[0]), min(resized[1], self.canvas_hw[1]))
        return resized

    @property
    def input_hw(self) -> tuple[int, int]:
        """(height, width) of the padded model input."""
        if self.canvas_hw is not None:
            return self.canvas_hw
        if self.fit == "longest":
            return (self.size, self.size)
        step = max(1, self.divisor)
        return tuple(-(-side // step) * step for side in self.resized_hw)  # type: ignore[return-value]

    def image_to_input(self, image: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 -> (3, H_in, W_in) float32 0..255, padded with ``pad_value``."""
        new_h, new_w = self.resized_hw
        if (new_h, new_w) == image.shape[:2]:
            resized = image
        elif self.scale < 1:
            resized = downscale(image, new_w, new_h)
        else:
            resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        # planar copy straight into the (3, H, W) canvas; only the margins get the pad value
        input_h, input_w = self.input_hw
        canvas = np.empty((3, input_h, input_w), dtype=np.float32)
        for channel, value in enumerate(self.pad_value):
            canvas[channel, new_h:] = value
            canvas[channel, :new_h, new_w:] = value
            canvas[channel, :new_h, :new_w] = resized[..., channel]
        return canvas

    def points_to_input(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) original pixels -> (..., 2) pixels of the model input."""
        return np.asarray(xy, dtype=np.float64) * self.scale

    def points_to_unit(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) original pixels -> (..., 2) in [0, 1] of the model input."""
        input_h, input_w = self.input_hw
        return self.points_to_input(xy) / np.array([input_w, input_h], dtype=np.float64)

    def mask_to_grid(self, mask: np.ndarray, grid: int | tuple[int, int]) -> np.ndarray:
        """Original-size mask -> float coverage on a grid over the model input (``grid`` is a
        side for square inputs, or (rows, cols))."""
        grid_h, grid_w = (grid, grid) if isinstance(grid, int) else grid
        input_h, input_w = self.input_hw
        new_h = max(1, round(self.resized_hw[0] * grid_h / input_h))
        new_w = max(1, round(self.resized_hw[1] * grid_w / input_w))
        small = cv2.resize(mask.astype(np.float32), (new_w, new_h), interpolation=cv2.INTER_AREA)
        out = np.zeros((grid_h, grid_w), dtype=np.float32)
        out[:new_h, :new_w] = small
        return out

    def logits_to_image(self, logits: np.ndarray) -> np.ndarray:
        """(M, g_h, g_w) logits on the model grid -> (M, H, W) logits of the original image.

        ``fit="shortest"`` follows the official post-processing exactly: bilinear up to the
        padded input, crop the padding, bilinear to the original size. Every other fit crops
        on the grid and resizes once."""
        count, grid_h, grid_w = logits.shape
        if count == 0:
            return np.zeros((0, self.height, self.width), dtype=np.float32)
        input_h, input_w = self.input_hw
        stack = np.ascontiguousarray(logits.transpose(1, 2, 0), dtype=np.float32)
        if self.fit == "shortest":
            stack = _resize_channels(stack, input_w, input_h)
            stack = stack[: self.resized_hw[0], : self.resized_hw[1]]
        else:
            crop_h = max(1, round(self.resized_hw[0] * grid_h / input_h))
            crop_w = max(1, round(self.resized_hw[1] * grid_w / input_w))
            stack = stack[:crop_h, :crop_w]
        return _resize_channels(stack, self.width, self.height).transpose(2, 0, 1)

    def official_resize_matrices(
        self, grid_hw: tuple[int, int]
    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """The official SEEM post-processing as linear maps, ``fit="shortest"`` only:
        ((rows, cols) bilinear from the grid to the padded input, cropped to the image),
        ((rows, cols) bicubic with antialiasing from there to the original size)."""
        grid_h, grid_w = grid_hw
        input_h, input_w = self.input_hw
        resized_h, resized_w = self.resized_hw
        before = (
            linear_resize_matrix(grid_h, input_h)[:resized_h].astype(np.float32),
            linear_resize_matrix(grid_w, input_w)[:resized_w].astype(np.float32),
        )
        after = (
            cubic_antialias_resize_matrix(resized_h, self.height).astype(np.float32),
            cubic_antialias_resize_matrix(resized_w, self.width).astype(np.float32),
        )
        return before, after

    def logits_to_image_official(self, logits: np.ndarray) -> np.ndarray:
        """(M, g_h, g_w) -> (M, H, W) as the official ``sem_seg_postprocess`` resizes results
        (referring masks, semantic scores): bilinear to the input, crop, bicubic with
        antialiasing to the original size."""
        (rows, cols), (rows_after, cols_after) = self.official_resize_matrices(logits.shape[-2:])
        return np.einsum(
            "yh,mhw,xw->myx",
            rows_after @ rows,
            logits.astype(np.float32),
            cols_after @ cols,
            optimize=True,
        )

    def upsampling_matrices(self, grid_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(A_y (H, g_h), A_x (W, g_w)): :meth:`logits_to_image` as two linear maps, so that
        ``A_y @ logits[m] @ A_x.T`` equals it (to float rounding). Lets callers resize a few
        output rows at a time instead of materialising every full-size map."""
        grid_h, grid_w = grid_hw
        input_h, input_w = self.input_hw
        if self.fit == "shortest":
            rows = linear_resize_matrix(grid_h, input_h)[: self.resized_hw[0]]
            cols = linear_resize_matrix(grid_w, input_w)[: self.resized_hw[1]]
            rows = linear_resize_matrix(len(rows), self.height) @ rows
            cols = linear_resize_matrix(len(cols), self.width) @ cols
            return rows.astype(np.float32), cols.astype(np.float32)
        crop_h = max(1, round(self.resized_hw[0] * grid_h / input_h))
        crop_w = max(1, round(self.resized_hw[1] * grid_w / input_w))
        rows = np.zeros((self.height, grid_h))
        cols = np.zeros((self.width, grid_w))
        rows[:, :crop_h] = linear_resize_matrix(crop_h, self.height)
        cols[:, :crop_w] = linear_resize_matrix(crop_w, self.width)
        return rows.astype(np.float32), cols.astype(np.float32)


def model_input_transform(config: ModelConfig, height: int, width: int) -> ResizeTransform:
    """How an image of this size is resized and padded for a model of ``config``: our models
    keep the frame's aspect (short side at ``image_size``, see the module's docstring); official
    FocalNet models take the short side at ``image_size``, padded to multiples of the size
    divisibility; the SAM ViT a square of the longest side (upstream)."""
    if config.family != "official_v1":
        return ResizeTransform(
            height,
            width,
            config.image_size,
            fit="aspect",
            divisor=OUR_INPUT_DIVISOR,
            pad_value=config.pixel_mean,
            max_long=OUR_MAX_ASPECT * config.image_size,
        )
    spec = config.official
    if spec.backbone_type == "sam_vit":
        return ResizeTransform(height, width, config.image_size, pad_value=config.pixel_mean)
    return ResizeTransform(
        height,
        width,
        config.image_size,
        fit="shortest",
        divisor=spec.size_divisibility,
        pad_value=config.pixel_mean,
    )


def on_one_canvas(transforms: Sequence[ResizeTransform]) -> list[ResizeTransform]:
    """The transforms of a batch's images with one input shape, so the images stack: aspect
    fits are padded further to the largest input (their scale unchanged); other fits must
    already agree."""
    canvas = (max(t.input_hw[0] for t in transforms), max(t.input_hw[1] for t in transforms))
    stacked = []
    for transform in transforms:
        if transform.input_hw != canvas:
            if transform.fit != "aspect":
                raise ValueError(
                    f"a {transform.fit!r} input of {transform.input_hw} cannot be padded to "
                    f"{canvas}: batch frames of one shape"
                )
            transform = replace(transform, canvas_hw=canvas)
        stacked.append(transform)
    return stacked


def fit_inside(
    height: int, width: int, canvas_hw: tuple[int, int], pad_value: tuple[float, float, float]
) -> ResizeTransform:
    """A frame of any shape letterboxed into a fixed input (an exported graph's)."""
    return ResizeTransform(
        height, width, max(canvas_hw), fit="box", pad_value=pad_value, canvas_hw=canvas_hw
    )


def cubic_antialias_resize_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) matrix of torch's ``interpolate(mode="bicubic", antialias=True,
    align_corners=False)`` along one axis (PIL's resampling: the cubic kernel with a = -0.5,
    widened by the scale when shrinking, weights normalised per output pixel). The official
    SEEM post-processing resizes to the original image this way."""
    if size_in == size_out:
        return np.eye(size_in)
    scale = size_in / size_out
    support = 2.0 * scale if scale >= 1.0 else 2.0
    stretch = 1.0 / scale if scale >= 1.0 else 1.0
    matrix = np.zeros((size_out, size_in))
    for row in range(size_out):
        centre = scale * (row + 0.5)
        first = max(int(centre - support + 0.5), 0)
        last = min(int(centre + support + 0.5), size_in)
        offsets = np.abs((np.arange(first, last) - centre + 0.5) * stretch)
        weights = np.where(
            offsets < 1.0,
            (1.5 * offsets - 2.5) * offsets * offsets + 1.0,
            np.where(
                offsets < 2.0, (((offsets - 5.0) * offsets + 8.0) * offsets - 4.0) * -0.5, 0.0
            ),
        )
        matrix[row, first:last] = weights / weights.sum()
    return matrix


def linear_resize_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) matrix of 1-D bilinear resizing with half-pixel centres and edge
    clamping (OpenCV ``INTER_LINEAR``, torch ``align_corners=False``)."""
    if size_in == size_out:
        return np.eye(size_in)
    source = (np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5
    low = np.floor(source).astype(np.int64)
    weight = source - low
    weight[low < 0] = 0.0
    low[low < 0] = 0
    top = low >= size_in - 1
    weight[top] = 0.0
    low[top] = size_in - 1
    matrix = np.zeros((size_out, size_in))
    rows = np.arange(size_out)
    np.add.at(matrix, (rows, low), 1.0 - weight)
    np.add.at(matrix, (rows, np.minimum(low + 1, size_in - 1)), weight)
    return matrix


# OpenCV 5 resizes at most 128 channels in one call (4.x: 512)
_CV_CHANNELS = 128


def _resize_channels(stack: np.ndarray, width: int, height: int) -> np.ndarray:
    """(h, w, C) float32 -> (height, width, C), bilinear with half-pixel centres (the same
    sampling as torch's ``interpolate(mode="bilinear", align_corners=False)``)."""
    if stack.shape[:2] == (height, width):
        return np.ascontiguousarray(stack)
    out = np.empty((height, width, stack.shape[2]), dtype=np.float32)
    for start in range(0, stack.shape[2], _CV_CHANNELS):
        chunk = np.ascontiguousarray(stack[..., start : start + _CV_CHANNELS])
        resized = cv2.resize(chunk, (width, height), interpolation=cv2.INTER_LINEAR)
        out[..., start : start + _CV_CHANNELS] = resized.reshape(height, width, -1)
    return out


def frame_size_wh(text: str) -> tuple[int, int]:
    """``"640x480"`` -> (640, 480): a camera frame's size as the CLI and the node take it.

    Raises:
        ValueError: not WIDTHxHEIGHT, or smaller than 16x16.
    """
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError as error:
        raise ValueError(f"size must be WIDTHxHEIGHT such as 640x480, got {text!r}") from error
    if width < 16 or height < 16:
        raise ValueError(f"size {text!r} is too small (need >= 16x16)")
    return width, height
