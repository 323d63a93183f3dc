"""The node's parameters: declared once, with descriptions and ranges, loaded from YAML.

Each field of :class:`NodeParams` carries its :class:`ParamSpec` (description, range or
choices), so the rclpy adapter declares exactly these parameters with ROS parameter
descriptors, ``seem-ros node`` and ``seem-ros bag`` check and read them from
``config/seem.yaml``, and ``docs/ros.md`` documents them, all from this one list.

The YAML layout is the one ``ros2 run --ros-args --params-file`` reads::

    /**:
      ros__parameters:
        classes: "mug; person"
        score_threshold: 0.5

``/**`` applies to every node, under any namespace (what ``config/seem.yaml`` uses); a section
named after the node is read too and wins.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..transforms import frame_size_wh

NODE_NAME = "seem_node"
ParamValue = bool | int | float | str

MAX_IMAGE_PIXELS = 7680 * 4320


class ParamError(ValueError):
    """A parameter value, name or parameter file is invalid."""


@dataclass(frozen=True)
class ParamSpec:
    """How a parameter is declared: name, type, default, description and allowed values.

    ``read_only`` parameters take effect only when the node starts (the model, the QoS,
    which image topic is subscribed); the others may change while it runs.
    """

    name: str
    default: ParamValue
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = True

    @property
    def value_type(self) -> type:
        return type(self.default)

    def check(self, value: object) -> ParamValue:
        """Return ``value`` as this parameter's type, or raise ParamError saying why not."""
        expected = self.value_type
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not expected:
            raise ParamError(
                f"parameter {self.name!r} must be a {expected.__name__}, "
                f"got {type(value).__name__} {value!r}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ParamError(f"parameter {self.name!r} must be finite, got {value!r}")
        if self.minimum is not None and value < self.minimum:  # type: ignore[operator]
            raise ParamError(f"parameter {self.name!r} must be >= {self.minimum:g}, got {value!r}")
        if self.maximum is not None and value > self.maximum:  # type: ignore[operator]
            raise ParamError(f"parameter {self.name!r} must be <= {self.maximum:g}, got {value!r}")
        if self.choices and value not in self.choices:
            raise ParamError(
                f"parameter {self.name!r} must be one of {list(self.choices)}, got {value!r}"
            )
        return value  # type: ignore[return-value]


def _param(
    default: ParamValue,
    description: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: tuple[str, ...] = (),
    read_only: bool = True,
) -> Any:
    spec = ParamSpec("", default, description, minimum, maximum, choices, read_only)
    return field(default=default, metadata={"spec": spec})


@dataclass(frozen=True)
class NodeParams:
    """Every parameter of the SEEM node, validated on construction."""

    model_path: str = _param(
        "",
        "Model weights (.safetensors with its .json card), or an export folder (seem-ros "
        "export) to run on TensorRT or ONNX Runtime without PyTorch; empty: the shipped demo "
        "model.",
    )
    backend: str = _param(
        "auto",
        "Inference backend; auto takes the fastest installed one that works (an export folder "
        "runs on tensorrt or onnxruntime).",
        choices=("auto", "tensorrt", "onnxruntime", "torch"),
    )
    precision: str = _param(
        "auto",
        "Numeric precision of the backend; auto: fp16 on GPUs, fp32 on the CPU.",
        choices=("auto", "fp32", "fp16"),
    )
    device: str = _param(
        "auto",
        "Where the PyTorch model runs; auto uses CUDA when available (an export folder's "
        "backend picks its own devices).",
        choices=("auto", "cpu", "cuda"),
    )
    input_size: int = _param(
        0,
        "Model input's short side in pixels (frames keep their aspect); 0: the model's own "
        "size. Any other value must equal the size the model was built for.",
        minimum=0,
        maximum=4096,
    )
    frame_size: str = _param(
        "",
        "The camera's frame size, 'WIDTHxHEIGHT' (e.g. 640x480): with a .safetensors model on "
        "the auto, tensorrt or onnxruntime backend, the exported graphs are made for it, so "
        "frames keep the model's scale. Empty: graphs for a square frame, into which other "
        "frames are letterboxed (logged once per frame shape). An export folder's input was "
        "fixed when it was exported (seem-ros export --frame-size).",
    )
    classes: str = _param(
        "",
        "Standing class names for open-vocabulary segmentation, 'mug; person; door handle'; "
        "empty: the model card's vocabulary (none for a model without one).",
        read_only=False,
    )
    score_threshold: float = _param(
        0.5,
        "Lowest score a class-name instance is reported with.",
        minimum=0.0,
        maximum=1.0,
        read_only=False,
    )
    max_instances: int = _param(
        50,
        "Most class-name instances reported per frame.",
        minimum=1,
        maximum=1000,
        read_only=False,
    )
    tracking: bool = _param(
        True, "Follow objects across frames with stable track IDs (seem/detections id)."
    )
    tracking_ttl: int = _param(
        15,
        "Frames a lost track is kept (and searched for) before it is dropped.",
        minimum=1,
        maximum=10000,
    )
    publish_overlay: bool = _param(
        True,
        "Publish seem/overlay, the input image with the instances drawn on it (rgb8).",
        read_only=False,
    )
    qos_reliability: str = _param(
        "best_effort",
        "Reliability of the image and camera_info subscriptions; best_effort also receives "
        "reliable publishers.",
        choices=("best_effort", "reliable"),
    )
    use_compressed: bool = _param(
        False, "Subscribe to image/compressed (sensor_msgs/CompressedImage) instead of image."
    )
    rectified_image: bool = _param(
        False,
        "The image topic is rectified: project /clicked_point with CameraInfo P instead of "
        "K and the distortion model.",
    )
    max_clicks: int = _param(
        32,
        "Most standing clicks; the oldest is dropped (and counted) beyond it.",
        minimum=1,
        maximum=1024,
        read_only=False,
    )
    max_image_pixels: int = _param(
        MAX_IMAGE_PIXELS,
        "Largest accepted image (width * height); larger ones are rejected.",
        minimum=1,
        maximum=MAX_IMAGE_PIXELS,
        read_only=False,
    )
    diagnostics_period: float = _param(
        1.0, "Seconds between diagnostics messages.", minimum=0.05, maximum=60.0
    )

    def __post_init__(self) -> None:
        for spec in param_specs():
            object.__setattr__(self, spec.name, spec.check(getattr(self, spec.name)))
        if self.frame_size:
            parse_frame_size(self.frame_size)

    @property
    def frame_hw(self) -> tuple[int, int] | None:
        """``frame_size`` as (height, width), None when empty."""
        return parse_frame_size(self.frame_size) if self.frame_size else None

    def replace(self, **changes: object) -> NodeParams:
        """A copy with ``changes`` applied (validated; unknown names raise ParamError)."""
        unknown = sorted(set(changes) - set(param_names()))
        if unknown:
            raise ParamError(f"unknown parameter(s) {unknown}; known: {list(param_names())}")
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, ParamValue]:
        return {name: getattr(self, name) for name in param_names()}


def param_specs() -> tuple[ParamSpec, ...]:
    """The declaration of every parameter, in declaration order."""
    return tuple(
        dataclasses.replace(f.metadata["spec"], name=f.name) for f in dataclasses.fields(NodeParams)
    )


def param_names() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(NodeParams))


def node_section(document: object, node_name: str = NODE_NAME) -> dict[str, object]:
    """The ``ros__parameters`` that apply to ``node_name`` in a parsed parameter file."""
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise ParamError("a parameter file must map node names to 'ros__parameters'")
    merged: dict[str, object] = {}
    for key in ("/**", node_name, f"/{node_name}"):
        section = document.get(key)
        if section is None:
            continue
        if not isinstance(section, Mapping) or not isinstance(
            section.get("ros__parameters", {}), Mapping
        ):
            raise ParamError(f"section {key!r} must hold a 'ros__parameters' mapping")
        merged.update(section.get("ros__parameters") or {})
    return merged


def load_params(
    path: str | Path | None = None,
    *,
    node_name: str = NODE_NAME,
    overrides: Mapping[str, object] | None = None,
) -> NodeParams:
    """Parameters from the file at ``path`` (if given), then ``overrides``, over the defaults.

    Raises:
        ParamError: The file is missing or malformed, names an unknown parameter, or a value
            has the wrong type or lies outside its range.
    """
    values: dict[str, object] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ParamError(f"parameter file not found: {path}")
        try:
            document = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise ParamError(f"{path} is not valid YAML: {error}") from error
        try:
            values.update(node_section(document, node_name))
        except ParamError as error:
            raise ParamError(f"{path}: {error}") from error
    values.update(overrides or {})
    try:
        return NodeParams().replace(**values)
    except ParamError as error:
        where = f"{path}: " if path is not None else ""
        raise ParamError(f"{where}{error}") from error


def parse_frame_size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> (480, 640), (height, width).

    Raises:
        ParamError: not WIDTHxHEIGHT with both at least 16.
    """
    try:
        width, height = frame_size_wh(text)
    except ValueError as error:
        raise ParamError(f"parameter 'frame_size': {error}") from error
    return height, width
