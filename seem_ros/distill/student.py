"""A student for a teacher: our SEEM architecture at the student's size, in the teacher's text
space.

The student carries the teacher's text tower, frozen: class names and phrases are embedded the
way the teacher embeds them (once per prompt change, cached by the ``Segmenter``), so open
vocabulary carries over and the student never relearns language. Its decoder's embeddings
live in the teacher's joint space (``text.embed_dim`` = the teacher's).

A teacher of our own family also lends its weights as the student's starting point: every
student tensor starts from the leading slice of the teacher's tensor of the same name
(channels, heads and layers the student keeps), a cheap structured-pruning initialisation that
distillation then repairs. An official teacher's visual parts share no names with ours, so
only its text tower carries over.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..model.backbone import ResidualBlock, load_timm_weights
from ..model.build import AnySEEM, build_model
from ..model.config import ModelConfig, TextConfig, load_config
from ..model.seem import SEEM

LOG = logging.getLogger(__name__)


def teacher_text_config(teacher: AnySEEM) -> TextConfig:
    """The text section a student of ``teacher`` needs to hold the teacher's text tower."""
    config = teacher.config
    if config.family == "official_v1":
        spec = config.official
        assert spec is not None
        return TextConfig(
            tower="official_v1",
            context_length=spec.text_context_length,
            vocab_size=spec.text_vocab_size,
            width=spec.text_width,
            heads=spec.text_heads,
            layers=spec.text_layers,
            embed_dim=spec.dim_proj,
        )
    return TextConfig(**{**config.text.__dict__})


def student_config(name_or_path: str | Path, teacher: AnySEEM) -> ModelConfig:
    """The student's architecture (a model config name or YAML) with the teacher's text."""
    config = load_config(name_or_path)
    if config.family != "seem_ros":
        raise ValueError(
            f"student config {config.name!r} is of family {config.family!r}; students use our "
            "architecture (family seem_ros), sized by the config"
        )
    data = config.to_dict()
    data["text"] = teacher_text_config(teacher).__dict__
    return ModelConfig.from_dict(data)


def copy_text_space(student: SEEM, teacher: AnySEEM) -> None:
    """Give ``student`` the teacher's text tower (frozen) and, for our teachers, its
    similarity temperature (frozen too: the student's embeddings are scored as the teacher's
    are, and a smaller model left to learn it settles on flatter, less decisive class
    distributions) and its "no object" logit (a start, learned on)."""
    if teacher.config.family == "official_v1":
        student.text_encoder.load_state_dict(teacher.language.state_dict())
    else:
        student.text_encoder.load_state_dict(teacher.text_encoder.state_dict())
        with torch.no_grad():
            student.logit_scale.copy_(teacher.logit_scale)
            student.void_logit.copy_(teacher.void_logit)
        student.logit_scale.requires_grad_(False)
    for param in student.text_encoder.parameters():
        param.requires_grad_(False)


def copy_leading_slices(student: SEEM, source: SEEM) -> int:
    """Start every student tensor from the ``source`` tensor (the teacher, or an earlier
    student) of the same name and rank; returns how many tensors were initialised that way.

    A larger source lends its leading slice (channels, heads and layers the student keeps).
    A smaller source, an earlier student being grown, fills the leading slice and the
    student's extra *input* channels start at zero, so the outputs the source computed are
    computed unchanged: with the per-channel BatchNorm of the built-in backbone, a widened
    stage and the layers reading it start as the source's function (see ``grow_blocks`` for
    added residual blocks). Widened LayerNorm/GroupNorm widths are only approximately kept.

    Decoder layers are matched from the end: a student with fewer layers takes the source's
    last ones, which attend the same feature levels (``SEEMDecoder.level_of_layer``) and sit
    nearest the outputs it learns."""
    source_state = source.state_dict()
    layer_offset = max(0, len(source.decoder.layers) - len(student.decoder.layers))
    copied = 0
    with torch.no_grad():
        for name, tensor in student.state_dict().items():
            donor = source_state.get(_source_name(name, layer_offset))
            if donor is None or donor.ndim != tensor.ndim or name.startswith("text_encoder."):
                continue
            if tensor.ndim >= 2 and donor.shape[1] < tensor.shape[1]:
                tensor[:, donor.shape[1] :] = 0  # new inputs: silent until trained
            region = tuple(slice(0, min(s, t)) for s, t in zip(donor.shape, tensor.shape))
            tensor[region] = donor[region]
            copied += 1
        grow_blocks(student, source_state)
    return copied


def grow_blocks(student: SEEM, source_state: dict[str, torch.Tensor]) -> None:
    """Residual blocks the source lacks start as identities (their last BatchNorm's scale and
    shift at zero, the "zero-init residual" of Goyal et al.): a deeper student grown from a
    shallower one starts as its function."""
    for prefix, module in student.named_modules():
        if not isinstance(module, ResidualBlock) or f"{prefix}.conv1.0.weight" in source_state:
            continue
        norm = module.conv2[1]
        assert isinstance(norm, torch.nn.BatchNorm2d)
        norm.weight.zero_()
        norm.bias.zero_()


def _source_name(name: str, layer_offset: int) -> str:
    """The source tensor a student tensor starts from: ``decoder.layers.i.*`` takes
    ``decoder.layers.<i + layer_offset>.*``."""
    parts = name.split(".", 3)
    if parts[:2] != ["decoder", "layers"]:
        return name
    parts[2] = str(int(parts[2]) + layer_offset)
    return ".".join(parts)


def build_student(
    config: str | Path,
    teacher: AnySEEM,
    *,
    seed: int = 0,
    init_from_teacher: bool = True,
    init_from: SEEM | None = None,
    backbone_weights: str | Path | None = None,
) -> SEEM:
    """A fresh student for ``teacher``.

    Args:
        config: the student's size, a config name (e.g. ``student_nano``) or YAML path; its
            ``text`` section is replaced by the teacher's.
        init_from_teacher: start from slices of a same-family teacher's weights.
        init_from: an earlier student to start from instead: its leading slices where the
            new student is narrower (e.g. a slimmer backbone at a new input size), and grown
            where it is wider or deeper (``copy_leading_slices``: the new student starts as
            the earlier one's function); what it lacks otherwise keeps the teacher's slices.
        backbone_weights: a local timm classification checkpoint for a timm backbone (the
            student's config names the timm model); loaded after the slicing.
    """
    model = build_model(student_config(config, teacher), seed=seed)
    assert isinstance(model, SEEM)
    if init_from_teacher and isinstance(teacher, SEEM):
        copied = copy_leading_slices(model, teacher)
        LOG.info("student initialised from slices of %d teacher tensors", copied)
    if init_from is not None:
        copied = copy_leading_slices(model, init_from)
        LOG.info("student initialised from %d tensors of the earlier student", copied)
    if backbone_weights:
        body = getattr(model.backbone, "body", None)
        if body is None:
            raise ValueError(
                f"--backbone-weights: the student's backbone {model.config.backbone.name!r} is "
                "built in; name a timm model in the student config to load timm weights"
            )
        load_timm_weights(body, Path(backbone_weights))
    copy_text_space(model, teacher)
    return model
