"""Overlays: what a person looks at to judge a result, and what was asked for.

Each instance gets a translucent fill and an opaque outline in a colour that stands out from
the object under it, and a label (``label score``, ``#track``) placed inside the image without
covering another label. The prompts are drawn too: positive clicks as green ``+`` discs,
negative clicks as red ``-`` discs, boxes dashed, scribbles as strokes (red when negative),
mask prompts as a dashed outline. Text, lines and markers scale with the image, so an overlay
reads the same at 256x256 and at 4000x3000.
"""

from __future__ import annotations

import colorsys
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .prompts import ObjectPrompt, PromptSet
from .results import Instance, SegmentationResult

FONT = cv2.FONT_HERSHEY_SIMPLEX
POSITIVE_CLICK = (40, 210, 70)
NEGATIVE_CLICK = (235, 45, 45)
LABEL_BACKGROUND = (20, 20, 20)
LABEL_TEXT = (255, 255, 255)
FILL_ALPHA = 0.4
MIN_HUE_DIFFERENCE = 0.25  # a quarter turn of the colour wheel between a fill and its object

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (end-exclusive)


def palette(count: int, *, seed_offset: int = 0) -> np.ndarray:
    """``count`` distinct, bright RGB colours (golden-ratio hue steps), uint8."""
    colours = []
    for index in range(count):
        hue = ((index + seed_offset) * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 1.0)
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
    return np.array(colours, dtype=np.uint8).reshape(-1, 3)


CANDIDATE_COLOURS = palette(12)


@dataclass(frozen=True)
class Style:
    """Sizes for one image: everything scales with the image's longer side."""

    font_scale: float
    text_thickness: int
    line: int
    marker: int
    pad: int

    @classmethod
    def for_image(cls, height: int, width: int) -> Style:
        unit = max(height, width) / 640.0
        return cls(
            font_scale=max(0.38, 0.5 * unit),
            text_thickness=max(1, round(1.2 * unit)),
            line=max(1, round(2 * unit)),
            marker=max(5, round(7 * unit)),
            pad=max(2, round(3 * unit)),
        )

    def text_size(self, text: str) -> tuple[int, int, int]:
        """(width, height above the baseline, baseline depth) of ``text``, pixels."""
        (width, height), baseline = cv2.getTextSize(
            text, FONT, self.font_scale, self.text_thickness
        )
        return width, height, baseline

    def label_size(self, text: str) -> tuple[int, int]:
        width, height, baseline = self.text_size(text)
        return width + 2 * self.pad, height + baseline + 2 * self.pad


@dataclass(frozen=True)
class Label:
    text: str
    rect: Rect
    colour: tuple[int, int, int]


def contrasting_colour(key: int, object_rgb: np.ndarray) -> tuple[int, int, int]:
    """The palette colour for ``key`` (stable across frames for a track ID), or the next one
    whose hue is at least :data:`MIN_HUE_DIFFERENCE` away from the object's own colour, so the
    tint and outline read as "marked" rather than as the object (red on a yellow star would
    turn it orange). Any palette colour stands out on a grey, black or white object."""
    count = len(CANDIDATE_COLOURS)
    red, green, blue = (float(c) / 255.0 for c in object_rgb)
    hue, saturation, value = colorsys.rgb_to_hsv(red, green, blue)
    order = [CANDIDATE_COLOURS[(key + step) % count] for step in range(count)]
    if saturation < 0.25 or value < 0.2:
        return tuple(int(c) for c in order[0])  # type: ignore[return-value]
    distances = [_hue_distance(hue, _hue(colour)) for colour in order]
    for colour, distance in zip(order, distances):
        if distance >= MIN_HUE_DIFFERENCE:
            return tuple(int(c) for c in colour)  # type: ignore[return-value]
    best = order[int(np.argmax(distances))]
    return tuple(int(c) for c in best)  # type: ignore[return-value]


def _hue(colour: np.ndarray) -> float:
    return colorsys.rgb_to_hsv(*(float(c) / 255.0 for c in colour))[0]


def _hue_distance(a: float, b: float) -> float:
    """Distance of two hues on the colour wheel, 0 .. 0.5 (0.5 = opposite)."""
    difference = abs(a - b) % 1.0
    return min(difference, 1.0 - difference)


def _overlaps(a: Rect, b: Rect, gap: int = 1) -> bool:
    """Whether two boxes overlap or come closer than ``gap`` pixels."""
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


def place_labels(
    requests: Sequence[tuple[str, Rect | None, tuple[int, int, int]]],
    image_hw: tuple[int, int],
    style: Style,
    *,
    avoid: Iterable[Rect] = (),
) -> list[Label]:
    """Boxes for labels, each inside the image and overlapping no other label.

    ``requests`` are ``(text, anchor box or None, colour)``; a label goes above its anchor's
    top-left corner if it can, else inside it, below it, right-aligned, then the nearest free
    row; labels without an anchor go to the top-left. Text too wide for the image is shortened
    with "..". ``avoid`` (e.g. click markers) is kept clear when there is room; when the image
    is full of labels, the rest are left out.
    """
    placed: list[Label] = []
    obstacles = list(avoid)
    for text, anchor, colour in requests:
        fitted = _fit_text(text, image_hw[1], style)
        w, h = style.label_size(fitted)
        size = (min(w, image_hw[1]), min(h, image_hw[0]))
        taken = [label.rect for label in placed]
        rect = None
        for blockers in (taken + obstacles, taken):
            rect = next(
                (
                    candidate
                    for candidate in _label_candidates(anchor, size, image_hw)
                    if not any(_overlaps(candidate, other) for other in blockers)
                ),
                None,
            )
            if rect is not None:
                break
        rect = rect or _free_slot(taken, size, image_hw)
        if rect is not None:
            placed.append(Label(fitted, rect, colour))
    return placed


def _label_candidates(
    anchor: Rect | None, size: tuple[int, int], image_hw: tuple[int, int]
) -> Iterator[Rect]:
    """Label positions by preference, clamped inside the image."""
    (w, h), (height, width) = size, image_hw
    x0, y0, x1, y1 = anchor if anchor is not None else (0, 0, w, h)
    corners = [(x0, y0 - h), (x0, y0), (x0, y1), (x1 - w, y0 - h), (x1 - w, y1)]
    rows = [y for step in range(height // h + 1) for y in (y0 + step * h, y0 - step * h)]
    for x, y in corners + [(x0, y) for y in rows] + [(x1 - w, y) for y in rows]:
        x = min(max(int(x), 0), width - w)
        y = min(max(int(y), 0), height - h)
        yield (x, y, x + w, y + h)


def _free_slot(taken: list[Rect], size: tuple[int, int], image_hw: tuple[int, int]) -> Rect | None:
    w, h = size
    for y in range(0, image_hw[0] - h + 1, max(1, h // 2)):
        for x in range(0, image_hw[1] - w + 1, max(1, w // 4)):
            rect = (x, y, x + w, y + h)
            if not any(_overlaps(rect, other) for other in taken):
                return rect
    return None


def _fit_text(text: str, width: int, style: Style) -> str:
    if style.label_size(text)[0] <= width:
        return text
    while len(text) > 1 and style.label_size(text + "..")[0] > width:
        text = text[:-1]
    return text + ".."


def draw_label(image: np.ndarray, label: Label, style: Style) -> None:
    x0, y0, x1, y1 = label.rect
    cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), LABEL_BACKGROUND, -1)
    stripe = max(1, style.pad // 2)
    cv2.rectangle(image, (x0, y0), (x0 + stripe - 1, y1 - 1), label.colour, -1)
    _, text_height, _ = style.text_size(label.text)
    cv2.putText(
        image,
        label.text,
        (x0 + style.pad, y0 + style.pad + text_height),
        FONT,
        style.font_scale,
        LABEL_TEXT,
        style.text_thickness,
        cv2.LINE_AA,
    )


def _object_prompts(prompts: PromptSet | ObjectPrompt | Sequence[object] | None) -> list:
    if prompts is None:
        return []
    if isinstance(prompts, PromptSet):
        return list(prompts.objects)
    if isinstance(prompts, ObjectPrompt):
        return [prompts]
    return [p for p in prompts if isinstance(p, ObjectPrompt)]


def click_marker_rects(prompts: Sequence[ObjectPrompt], style: Style) -> list[Rect]:
    r = style.marker + style.line
    rects = []
    for obj in prompts:
        if obj.points is not None:
            for x, y in obj.points.coords:
                rects.append((int(x) - r, int(y) - r, int(x) + r + 1, int(y) + r + 1))
    return rects


def draw_prompts(
    image: np.ndarray,
    prompts: Sequence[ObjectPrompt],
    colours: Sequence[tuple[int, int, int]],
    style: Style,
) -> None:
    """Draw each object's box, scribbles, mask outline and clicks (clicks last, on top)."""
    for obj, colour in zip(prompts, colours):
        if obj.mask is not None:
            contours, _ = cv2.findContours(
                obj.mask.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
            )
            for contour in contours:
                _dashed(image, contour[:, 0, :], colour, style, closed=True)
        if obj.box is not None:
            x0, y0, x1, y1 = (round(v) for v in obj.box.xyxy)
            corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
            _dashed(image, corners, colour, style, closed=True)
        for scribble in obj.scribbles:
            stroke = colour if scribble.positive else NEGATIVE_CLICK
            points = np.round(scribble.coords).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(image, [points], False, (0, 0, 0), style.line * 2 + 2, cv2.LINE_AA)
            cv2.polylines(image, [points], False, stroke, style.line * 2, cv2.LINE_AA)
    for obj, colour in zip(prompts, colours):
        if obj.points is not None:
            for (x, y), positive in zip(obj.points.coords, obj.points.labels):
                draw_click(image, (int(x), int(y)), bool(positive), style, rim=colour)


def draw_click(
    image: np.ndarray,
    xy: tuple[int, int],
    positive: bool,
    style: Style,
    *,
    rim: tuple[int, int, int] = (255, 255, 255),
) -> None:
    """A filled disc at the click (green for positive, red for negative) with a ``+`` or ``-``
    in it, so the two differ in shape as well as colour; the rim has its object's colour."""
    r = style.marker
    cv2.circle(image, xy, r + style.line + 1, (0, 0, 0), -1, cv2.LINE_AA)
    cv2.circle(image, xy, r + style.line, rim, -1, cv2.LINE_AA)
    cv2.circle(image, xy, r, POSITIVE_CLICK if positive else NEGATIVE_CLICK, -1, cv2.LINE_AA)
    arm, thickness = max(2, r * 3 // 5), max(1, r // 3)
    x, y = xy
    cv2.line(image, (x - arm, y), (x + arm, y), (255, 255, 255), thickness)
    if positive:
        cv2.line(image, (x, y - arm), (x, y + arm), (255, 255, 255), thickness)


def _dashed(
    image: np.ndarray,
    points: np.ndarray,
    colour: tuple[int, int, int],
    style: Style,
    *,
    closed: bool,
) -> None:
    """A dashed polyline with a dark edge (visible on light and dark images alike)."""
    points = np.asarray(points, dtype=np.float64)
    if closed:
        points = np.vstack([points, points[:1]])
    dash = 4 * style.marker
    travelled = 0.0
    for start, end in itertools.pairwise(points):
        length = float(np.hypot(*(end - start)))
        position = 0.0
        while position < length:
            phase = (travelled + position) % (2 * dash)
            run = min((dash - phase) if phase < dash else (2 * dash - phase), length - position)
            if phase < dash:
                a = start + (end - start) * (position / length)
                b = start + (end - start) * ((position + run) / length)
                pa, pb = tuple(np.round(a).astype(int)), tuple(np.round(b).astype(int))
                cv2.line(image, pa, pb, (0, 0, 0), style.line + 2, cv2.LINE_AA)
                cv2.line(image, pa, pb, colour, style.line, cv2.LINE_AA)
            position += max(run, 1e-6)
        travelled += length


def instance_text(instance: Instance) -> str:
    if instance.source == "prompt" and not instance.found:
        return f"{instance.label}: not found"
    text = f"{instance.label} {instance.score:.2f}"
    if instance.track_id is not None:
        text = f"#{instance.track_id} {text}"
    return text


def draw_overlay(
    image: np.ndarray,
    result: SegmentationResult,
    *,
    prompts: PromptSet | ObjectPrompt | Sequence[object] | None = None,
    alpha: float = FILL_ALPHA,
    show_labels: bool = True,
    colour_keys: list[int] | None = None,
) -> np.ndarray:
    """RGB image with each instance filled (``alpha``), outlined and labelled, and the prompts
    that were asked (``prompts``: what was passed to ``segment``) drawn on top.

    ``colour_keys`` (e.g. track IDs) keep an object's colour stable from frame to frame; a
    prompted object's prompts are drawn in its instance's colour.
    """
    height, width = image.shape[:2]
    style = Style.for_image(height, width)
    overlay = image.copy()
    keys = colour_keys or list(range(len(result.instances)))
    ids = result.instance_ids
    colours: list[tuple[int, int, int]] = []
    for index in range(1, len(result.instances) + 1):
        visible = ids == index
        if not visible.any():
            colours.append(contrasting_colour(keys[index - 1], np.zeros(3, np.float32)))
            continue
        colour = contrasting_colour(keys[index - 1], image[visible].mean(axis=0))
        colours.append(colour)
        tint = np.asarray(colour, np.float32)
        overlay[visible] = np.round(image[visible] * (1 - alpha) + tint * alpha).astype(np.uint8)
    for index, colour in enumerate(colours, start=1):
        visible = (ids == index).astype(np.uint8)
        if visible.any():
            contours, _ = cv2.findContours(visible, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(overlay, contours, -1, colour, style.line, cv2.LINE_AA)
    objects = _object_prompts(prompts)
    by_object = {
        inst.object_index: colours[i]
        for i, inst in enumerate(result.instances)
        if inst.object_index is not None
    }
    prompt_colours = [
        by_object.get(i, tuple(int(c) for c in CANDIDATE_COLOURS[i % len(CANDIDATE_COLOURS)]))
        for i in range(len(objects))
    ]
    draw_prompts(overlay, objects, prompt_colours, style)  # type: ignore[arg-type]
    if show_labels:
        requests = [
            (instance_text(inst), inst.box if inst.found else None, colours[i])
            for i, inst in enumerate(result.instances)
        ]
        avoid = click_marker_rects(objects, style)
        for label in place_labels(requests, (height, width), style, avoid=avoid):
            draw_label(overlay, label, style)
    return overlay


def put_caption(image: np.ndarray, text: str, *, lines: int = 2) -> np.ndarray:
    """``image`` with a white strip below it holding ``text`` (wrapped, at most ``lines``)."""
    height, width = image.shape[:2]
    style = Style.for_image(height, width)
    rows = _wrap(text, width - 2 * style.pad, style)
    if len(rows) > lines:
        rows = [*rows[: lines - 1], _fit_text(f"{rows[lines - 1]} {rows[lines]}", width, style)]
    _, text_height, baseline = style.text_size("Ag")
    row_height = text_height + baseline + style.pad
    strip = np.full((row_height * lines + style.pad, width, 3), 255, np.uint8)
    for row, line in enumerate(rows):
        y = style.pad + row * row_height + text_height
        cv2.putText(
            strip,
            line,
            (style.pad, y),
            FONT,
            style.font_scale,
            (0, 0, 0),
            style.text_thickness,
            cv2.LINE_AA,
        )
    return np.vstack([image, strip])


def _wrap(text: str, width: int, style: Style) -> list[str]:
    rows: list[str] = []
    for word in text.split():
        if rows and style.text_size(f"{rows[-1]} {word}")[0] <= width:
            rows[-1] = f"{rows[-1]} {word}"
        else:
            rows.append(_fit_text(word, width, style) if style.text_size(word)[0] > width else word)
    return rows or [""]
