"""Typed, validated prompts: everything a user can tell SEEM about what to segment.

Coordinates are pixels of the *original* image, ``x`` = column, ``y`` = row, continuous
(the centre of the top-left pixel is ``(0.5, 0.5)``; any value in ``[0, W] x [0, H]`` lies in the
image). Resizing to the model input is the library's job, never the caller's.

Every prompt validates itself against the image it will be used with (:meth:`validate`), and all
problems raise :class:`PromptError` with a message that says what is wrong and how to fix it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

MAX_TEXT_CHARS = 300


class PromptError(ValueError):
    """A prompt is malformed or does not fit the image it is applied to."""


class PromptWarning(UserWarning):
    """A prompt is valid but cannot mean what it probably was meant to (the answer will be
    arbitrary or empty)."""


def _as_xy_array(coords: object, what: str) -> np.ndarray:
    try:
        array = np.asarray(coords, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise PromptError(f"{what}: coordinates must be numbers, got {coords!r}") from error
    if array.ndim == 1 and array.size == 2:
        array = array.reshape(1, 2)
    if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] == 0:
        raise PromptError(
            f"{what}: expected an (N, 2) array of x, y pixels, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise PromptError(f"{what}: coordinates must be finite, got {array.tolist()}")
    return array


def _check_inside(xy: np.ndarray, image_hw: tuple[int, int], what: str) -> None:
    height, width = image_hw
    outside = (xy[:, 0] < 0) | (xy[:, 0] > width) | (xy[:, 1] < 0) | (xy[:, 1] > height)
    if np.any(outside):
        bad = xy[outside][0].tolist()
        raise PromptError(
            f"{what}: point (x={bad[0]:g}, y={bad[1]:g}) lies outside the {width}x{height} image"
        )


def _as_bool_mask(mask: object, what: str) -> np.ndarray:
    array = np.asarray(mask)
    if array.ndim != 2:
        raise PromptError(f"{what}: mask must be 2-D (H, W), got shape {array.shape}")
    if array.dtype == bool:
        binary = array
    elif array.dtype in (np.uint8, np.int32, np.int64, np.uint16):
        values = np.unique(array)
        if not np.all(np.isin(values, (0, 1, 255))):
            raise PromptError(
                f"{what}: integer masks may only hold 0/1 or 0/255, "
                f"found values {values[:8].tolist()}"
            )
        binary = array > 0
    else:
        raise PromptError(f"{what}: mask dtype must be bool or uint8, got {array.dtype}")
    if not binary.any():
        raise PromptError(f"{what}: mask is empty (no pixel set)")
    return binary


def _check_text(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise PromptError(f"{what}: text must be a string, got {type(text).__name__}")
    stripped = " ".join(text.split())
    if not stripped:
        raise PromptError(f"{what}: text is empty")
    if len(stripped) > MAX_TEXT_CHARS:
        raise PromptError(f"{what}: text is {len(stripped)} characters, limit is {MAX_TEXT_CHARS}")
    return stripped


@dataclass(frozen=True)
class ClassNames:
    """Open-vocabulary class names for generic (instance / panoptic / semantic) segmentation."""

    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if isinstance(self.names, str):
            raise PromptError(
                "ClassNames: pass a sequence of names or use ClassNames.parse('a; b')"
            )
        cleaned: list[str] = []
        for name in self.names:
            text = _check_text(name, "ClassNames")
            if text.lower() not in (c.lower() for c in cleaned):
                cleaned.append(text)
        if not cleaned:
            raise PromptError("ClassNames: at least one class name is needed")
        object.__setattr__(self, "names", tuple(cleaned))

    @classmethod
    def parse(cls, text: str) -> ClassNames:
        """Parse ``"mug; person, door handle"`` (separators ``;`` or ``,``)."""
        if not isinstance(text, str):
            raise PromptError(f"ClassNames: expected a string, got {type(text).__name__}")
        parts = [part.strip() for part in text.replace(",", ";").split(";")]
        names = tuple(part for part in parts if part)
        if not names:
            raise PromptError(f"ClassNames: no class name in {text!r}")
        return cls(names)


@dataclass(frozen=True)
class ReferringText:
    """A referring phrase such as ``"the red mug on the left"``."""

    text: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", _check_text(self.text, "ReferringText"))


@dataclass(frozen=True, eq=False)
class Points:
    """Clicks: ``coords`` (N, 2) pixels, ``labels`` (N,) 1 = positive, 0 = negative."""

    coords: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        coords = _as_xy_array(self.coords, "Points")
        labels = np.asarray(self.labels).reshape(-1)
        if labels.shape[0] != coords.shape[0]:
            raise PromptError(f"Points: {coords.shape[0]} coordinates but {labels.shape[0]} labels")
        if not np.all(np.isin(labels, (0, 1))):
            raise PromptError(f"Points: labels must be 0 (negative) or 1 (positive), got {labels}")
        object.__setattr__(self, "coords", coords)
        object.__setattr__(self, "labels", labels.astype(np.int64))

    @classmethod
    def single(cls, x: float, y: float, positive: bool = True) -> Points:
        return cls(np.array([[x, y]]), np.array([int(positive)]))

    def validate(self, image_hw: tuple[int, int]) -> None:
        _check_inside(self.coords, image_hw, "Points")

    def __len__(self) -> int:
        return int(self.coords.shape[0])


@dataclass(frozen=True)
class Box:
    """An axis-aligned box ``(x0, y0, x1, y1)`` in pixels, ``x1 > x0`` and ``y1 > y0``."""

    x0: float
    y0: float
    x1: float
    y1: float

    def __post_init__(self) -> None:
        values = (self.x0, self.y0, self.x1, self.y1)
        try:
            floats = [float(v) for v in values]
        except (TypeError, ValueError) as error:
            raise PromptError(f"Box: coordinates must be numbers, got {values}") from error
        if not all(math.isfinite(v) for v in floats):
            raise PromptError(f"Box: coordinates must be finite, got {values}")
        x0, y0, x1, y1 = floats
        if x1 - x0 < 1.0 or y1 - y0 < 1.0:
            raise PromptError(
                f"Box: degenerate box {values}; need x1 > x0 and y1 > y0 by at least one pixel"
            )
        for name, value in zip(("x0", "y0", "x1", "y1"), floats):
            object.__setattr__(self, name, value)

    def validate(self, image_hw: tuple[int, int]) -> None:
        _check_inside(np.array([[self.x0, self.y0], [self.x1, self.y1]]), image_hw, "Box")

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)


@dataclass(frozen=True, eq=False)
class Scribble:
    """A polyline drawn over the object (``positive``) or over what is not the object."""

    coords: np.ndarray
    positive: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "coords", _as_xy_array(self.coords, "Scribble"))

    def validate(self, image_hw: tuple[int, int]) -> None:
        _check_inside(self.coords, image_hw, "Scribble")


@dataclass(frozen=True, eq=False)
class MaskPrompt:
    """A binary mask of the object, the same size as the image."""

    mask: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask", _as_bool_mask(self.mask, "MaskPrompt"))

    def validate(self, image_hw: tuple[int, int]) -> None:
        if tuple(self.mask.shape) != tuple(image_hw):
            raise PromptError(
                f"MaskPrompt: mask is {self.mask.shape[1]}x{self.mask.shape[0]} but the image is "
                f"{image_hw[1]}x{image_hw[0]}"
            )


@dataclass(frozen=True, eq=False)
class ReferenceRegion:
    """A region of *another* image ("find this object again"): an RGB image and its mask."""

    image: np.ndarray
    mask: np.ndarray

    def __post_init__(self) -> None:
        image = np.asarray(self.image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise PromptError(
                f"ReferenceRegion: image must be HxWx3 uint8, got {image.shape} {image.dtype}"
            )
        if image.shape[0] < 8 or image.shape[1] < 8:
            raise PromptError(f"ReferenceRegion: image {image.shape[:2]} is too small")
        mask = _as_bool_mask(self.mask, "ReferenceRegion")
        if mask.shape != image.shape[:2]:
            raise PromptError(
                f"ReferenceRegion: mask {mask.shape} does not match its image {image.shape[:2]}"
            )
        object.__setattr__(self, "image", image)
        object.__setattr__(self, "mask", mask)

    def validate(self, image_hw: tuple[int, int]) -> None:
        """A reference lives in its own image; nothing to check against the target image."""


@dataclass(frozen=True, eq=False)
class MemoryPrompt:
    """An object's own history: its previous mask and the decoder's memory tokens for it.

    Results hand these back (``Instance.memory``); pass them in the next interaction round or
    frame so the object is refined / followed instead of found from scratch. ``mask`` may be
    empty (the object was lost); ``tokens`` (K, D) may be None (only a mask is known).
    """

    mask: np.ndarray
    tokens: np.ndarray | None = None

    def __post_init__(self) -> None:
        mask = np.asarray(self.mask)
        if mask.ndim != 2 or mask.dtype != bool:
            raise PromptError(
                f"MemoryPrompt: mask must be a 2-D bool array, got {mask.shape} {mask.dtype}"
            )
        if self.tokens is not None:
            tokens = np.asarray(self.tokens, dtype=np.float32)
            if tokens.ndim != 2 or not np.all(np.isfinite(tokens)):
                raise PromptError(
                    f"MemoryPrompt: tokens must be a finite (K, D) array, got {tokens.shape}"
                )
            object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "mask", mask)

    def validate(self, image_hw: tuple[int, int]) -> None:
        """Masks from a differently sized frame are resized by the library, so nothing to check."""


VisualPrompt = Points | Box | Scribble | MaskPrompt


@dataclass(eq=False)
class ObjectPrompt:
    """Everything said about ONE object; all given parts are composed (the output matches all).

    ``label`` is the name reported for the result (defaults to the referring text, else
    ``"object"``). ``object_id`` lets callers (trackers, the node) recognise their object.
    """

    text: ReferringText | None = None
    points: Points | None = None
    box: Box | None = None
    scribbles: tuple[Scribble, ...] = ()
    mask: MaskPrompt | None = None
    reference: ReferenceRegion | None = None
    memory: MemoryPrompt | None = None
    label: str | None = None
    object_id: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.text, str):
            self.text = ReferringText(self.text)
        self.scribbles = tuple(self.scribbles)
        if self.is_empty:
            raise PromptError(
                "ObjectPrompt: give at least one of text/points/box/scribble/mask/reference/memory"
            )
        if self.only_negative:
            warnings.warn(
                "ObjectPrompt has only negative clicks/scribbles (what the object is NOT) and "
                "nothing saying what it is: its mask will be arbitrary or empty. Add a positive "
                "click, a box, text, a mask, or the object's memory from an earlier round.",
                PromptWarning,
                stacklevel=3,
            )

    @property
    def is_empty(self) -> bool:
        return not (
            self.text
            or self.points is not None
            or self.box is not None
            or self.scribbles
            or self.mask is not None
            or self.reference is not None
            or self.memory is not None
        )

    @property
    def only_negative(self) -> bool:
        """Negative clicks or scribbles and nothing positive: nothing says which object."""
        negatives = (self.points is not None and not self.points.labels.any()) or any(
            not s.positive for s in self.scribbles
        )
        positives = (
            self.text
            or (self.points is not None and self.points.labels.any())
            or self.box is not None
            or any(s.positive for s in self.scribbles)
            or self.mask is not None
            or self.reference is not None
            or self.memory is not None
        )
        return bool(negatives and not positives)

    @property
    def has_visual(self) -> bool:
        return bool(self.points is not None or self.box or self.scribbles or self.mask)

    @property
    def display_label(self) -> str:
        if self.label:
            return self.label
        if self.text is not None:
            return self.text.text
        return "object"

    def validate(self, image_hw: tuple[int, int]) -> None:
        for part in (
            self.points,
            self.box,
            self.mask,
            self.reference,
            self.memory,
            *self.scribbles,
        ):
            if part is not None:
                part.validate(image_hw)


PromptLike = (
    ClassNames
    | ObjectPrompt
    | ReferringText
    | Points
    | Box
    | Scribble
    | MaskPrompt
    | ReferenceRegion
)


@dataclass
class PromptSet:
    """The prompts for one image: optional class names plus any number of prompted objects."""

    classes: ClassNames | None = None
    objects: list[ObjectPrompt] = field(default_factory=list)

    def validate(self, image_hw: tuple[int, int]) -> None:
        if image_hw[0] <= 0 or image_hw[1] <= 0:
            raise PromptError(f"image size {image_hw} is empty")
        for index, obj in enumerate(self.objects):
            try:
                obj.validate(image_hw)
            except PromptError as error:
                raise PromptError(f"object {index}: {error}") from error

    @property
    def is_empty(self) -> bool:
        return self.classes is None and not self.objects


def as_prompt_set(prompts: PromptSet | PromptLike | Iterable[PromptLike] | None) -> PromptSet:
    """Normalise what a caller passes to ``segment``.

    Each simple prompt (text, points, box, ...) given on its own becomes its own object; to
    compose several prompts for ONE object wrap them in an :class:`ObjectPrompt`.
    """
    if prompts is None:
        return PromptSet()
    if isinstance(prompts, PromptSet):
        return prompts
    items: Sequence[object] = [prompts] if not isinstance(prompts, list | tuple) else prompts
    result = PromptSet()
    for item in items:
        if isinstance(item, ClassNames):
            if result.classes is not None:
                raise PromptError("only one ClassNames prompt per image; merge the names")
            result.classes = item
        elif isinstance(item, ObjectPrompt):
            result.objects.append(item)
        elif isinstance(item, ReferringText):
            result.objects.append(ObjectPrompt(text=item))
        elif isinstance(item, Points):
            result.objects.append(ObjectPrompt(points=item))
        elif isinstance(item, Box):
            result.objects.append(ObjectPrompt(box=item))
        elif isinstance(item, Scribble):
            result.objects.append(ObjectPrompt(scribbles=(item,)))
        elif isinstance(item, MaskPrompt):
            result.objects.append(ObjectPrompt(mask=item))
        elif isinstance(item, ReferenceRegion):
            result.objects.append(ObjectPrompt(reference=item))
        else:
            raise PromptError(f"unsupported prompt type {type(item).__name__}")
    return result
