"""Export SEEM to ONNX: one encoder graph, fixed-size decoder graphs and the text encoder.

The export wrappers live here, outside the model (segment-anything's ``utils/onnx.py`` idea):
each wraps one inference entry point of :class:`SEEM` with flat, named tensor inputs/outputs.

Why fixed prompt counts: the decoder is exported once per group count G (default 1, 10 and
50 objects; batch B = 1). The model's attention masks are built from ``G`` as a Python int,
so the tracer bakes it in anyway, and static shapes are what TensorRT optimises best. A
request for g objects runs on the smallest graph with G >= g, padded with ``group_valid = 0``:
groups never attend to each other and object queries never attend to groups, so padding
changes no result.

Each graph is post-processed before it is saved:

* ``Where`` on boolean tensors (the decoder's attention-mask selection) is rewritten as
  ``Or(And(c, x), And(Not(c), y))``: ONNX Runtime's CPU kernel has no boolean ``Where``;
* ONNX Runtime's *basic* offline optimisations (constant folding, redundant-node removal,
  Conv+BatchNorm fusion) are applied: they keep standard ONNX ops, so TensorRT still parses
  the result. (onnx-simplifier is not needed for that.)
* ``onnx.checker`` validates it, and the model card travels in ``metadata_props``.

Beside the graphs, the folder gets what running them without PyTorch needs
(:func:`seem_ros.runtime.export_folder.write_runtime_files`): the model card as JSON, the heads'
few tensors and CLIP's BPE vocabulary. The manifest (:mod:`.export_manifest`) lists it all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..model.build import AnySEEM, file_sha256
from ..model.card import ModelCard
from ..model.feature_names import FEATURE_NAMES, OFFICIAL_FEATURE_NAMES, feature_names
from ..model.official.prompt_tensors import (
    OfficialPromptTensors,
    empty_official_prompt_tensors,
)
from ..model.prompt_tensors import PromptTensors
from ..prompt_encoding import PromptLayout
from ..runtime.export_folder import write_runtime_files
from ..transforms import OUR_INPUT_DIVISOR
from .base import DECODER_OUTPUTS
from .export_manifest import (
    DEFAULT_EXPORT_SLOTS,
    DEFAULT_GROUP_COUNTS,
    DEFAULT_OPSET,
    IMAGE_INPUT,
    METADATA_PREFIX,
    OFFICIAL_TEXT_OUTPUTS,
    TEXT_INPUT,
    TEXT_OUTPUT,
    ExportError,
    ExportManifest,
)

if TYPE_CHECKING:
    import onnx

LOG = logging.getLogger(__name__)

DECODER_INPUTS = (*FEATURE_NAMES, *PromptTensors.names())
OFFICIAL_DECODER_INPUTS = (*OFFICIAL_FEATURE_NAMES, *OfficialPromptTensors.names())


def is_official(model: nn.Module) -> bool:
    """Whether ``model`` is of the official SEEM v1 family (its own prompt tensors)."""
    return model.config.family == "official_v1"


def prompt_class(model: nn.Module) -> type[PromptTensors] | type[OfficialPromptTensors]:
    return OfficialPromptTensors if is_official(model) else PromptTensors


def decoder_input_names(model: nn.Module) -> tuple[str, ...]:
    return OFFICIAL_DECODER_INPUTS if is_official(model) else DECODER_INPUTS


# ----------------------------------------------------------------------------- wrappers
class EncoderGraph(nn.Module):
    """image (B, 3, S, S) float32 RGB 0..255 -> the four feature maps of :data:`FEATURE_NAMES`."""

    def __init__(self, model: AnySEEM) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model.encode(image))


def decoder_output_names(model: AnySEEM) -> tuple[str, ...]:
    """The :data:`DECODER_OUTPUTS`, and the optional outputs (``OPTIONAL_DECODER_OUTPUTS``) this
    model's decoder has."""
    grounding = getattr(getattr(model, "decoder", None), "grounding", None) is not None
    return DECODER_OUTPUTS + (("group_grounding",) if grounding else ())


class DecoderGraph(nn.Module):
    """Four feature maps + the 14 prompt tensors (in :class:`PromptTensors` field order) ->
    :func:`decoder_output_names`, all float32."""

    def __init__(self, model: AnySEEM) -> None:
        super().__init__()
        self.model = model
        self.output_names = decoder_output_names(model)
        self.prompt_class = prompt_class(model)
        self.num_features = len(feature_names(model.config.family))

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = tuple(inputs[: self.num_features])
        prompts = self.prompt_class(*inputs[self.num_features :])
        outputs = self.model.decode(features, prompts)  # type: ignore[arg-type]
        return tuple(outputs[name] for name in self.output_names)  # type: ignore[misc]


class TextEncoderGraph(nn.Module):
    """tokens (N, context_length) int64 open_clip ids -> (N, E) unit text embeddings.

    Tokenising (BPE) stays in Python; everything after it is in the graph."""

    def __init__(self, model: AnySEEM) -> None:
        super().__init__()
        self.text_encoder = model.text_encoder

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(tokens)


class OfficialTextGraph(nn.Module):
    """input ids (N, 77) int64 (CLIP BPE, padded with end-of-text) -> the official language
    encoder's token embeddings (N, 77, E) and sentence embeddings (N, E), not normalised."""

    def __init__(self, model: AnySEEM) -> None:
        super().__init__()
        self.language = model.language

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.language.forward_tokens(tokens)


class OfficialSentenceGraph(nn.Module):
    """input ids (N, 77) int64 (CLIP BPE) -> (N, E) unit sentence embeddings of the official
    language encoder: the text tower of a student distilled from an official teacher, which
    takes phrases and class names as single sentence embeddings."""

    def __init__(self, model: AnySEEM) -> None:
        super().__init__()
        self.language = model.text_encoder

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        _, sentences = self.language.forward_tokens(tokens)
        return sentences / (sentences.norm(dim=-1, keepdim=True) + 1e-7)


# ----------------------------------------------------------------------------- hashing
GRAPH_FORMAT = 5
"""Bumped whenever the exported graphs change for the same weights (e.g. 2: additive attention
masks; 4: official decoders take reference-region inputs; 5: official visual-only decoders),
so caches of graphs and TensorRT engines from older code are not reused."""


def model_fingerprint(model: AnySEEM) -> str:
    """sha256 of the graph format, the architecture config and every weight: identifies exported
    graphs (and the TensorRT engines built from them) even for models never saved to a file."""
    digest = hashlib.sha256(f"seem_ros-graph-{GRAPH_FORMAT}".encode())
    digest.update(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{name}:{array.dtype}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


# ----------------------------------------------------------------------------- graph passes
def require_onnx() -> None:
    """Raise ExportError with the install hint when the ``onnx`` package is missing (it is in
    the ``onnx``, ``gpu``, ``tensorrt`` and ``dev`` extras, not in the runtime core)."""
    try:
        import onnx  # noqa: F401
    except ImportError as error:
        raise ExportError(
            f"ONNX export needs the onnx package ({error}): pip install 'seem_ros[onnx]'"
        ) from error


def rewrite_boolean_where(graph_model: onnx.ModelProto) -> int:
    """Replace ``Where`` nodes whose output is boolean with And/Or/Not; returns how many."""
    import onnx
    from onnx import TensorProto, helper

    inferred = onnx.shape_inference.infer_shapes(graph_model)
    graph = inferred.graph
    elem_types = {
        value.name: value.type.tensor_type.elem_type
        for value in (*graph.value_info, *graph.input, *graph.output)
    }
    nodes: list[onnx.NodeProto] = []
    rewritten = 0
    for node in graph_model.graph.node:
        if node.op_type != "Where" or elem_types.get(node.output[0]) != TensorProto.BOOL:
            nodes.append(node)
            continue
        condition, when_true, when_false = node.input
        out, name = node.output[0], node.name or node.output[0]
        nodes += [
            helper.make_node(
                "And", [condition, when_true], [f"{out}/taken"], name=f"{name}/and_true"
            ),
            helper.make_node("Not", [condition], [f"{out}/not_cond"], name=f"{name}/not"),
            helper.make_node(
                "And", [f"{out}/not_cond", when_false], [f"{out}/other"], name=f"{name}/and_false"
            ),
            helper.make_node("Or", [f"{out}/taken", f"{out}/other"], [out], name=f"{name}/or"),
        ]
        rewritten += 1
    del graph_model.graph.node[:]
    graph_model.graph.node.extend(nodes)
    return rewritten


def optimise_offline(source: Path, target: Path) -> None:
    """ONNX Runtime's provider-independent (basic) optimisations, saved as a plain ONNX file
    (the graph unchanged where ONNX Runtime is not installed, e.g. a TensorRT-only setup)."""
    try:
        import onnxruntime as ort
    except ImportError:
        LOG.info("onnxruntime is not installed: %s keeps its unoptimised graph", target.name)
        shutil.copyfile(source, target)
        return

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(target)
    options.log_severity_level = 3
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


def card_metadata(card: ModelCard, fingerprint: str) -> dict[str, str]:
    """The model card as ONNX ``metadata_props`` (all values are strings)."""
    return {
        "model_card": card.to_json(),
        "config": json.dumps(card.config.to_dict()),
        "vocabulary": json.dumps(card.vocabulary),
        "weights_sha256": card.weights_sha256,
        "model_sha256": fingerprint,
        "trained": json.dumps(card.trained),
    }


def graph_metadata(path: Path) -> dict[str, str]:
    """The ``seem_ros.*`` metadata of an exported graph, prefix removed."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {
        prop.key.removeprefix(METADATA_PREFIX): prop.value
        for prop in proto.metadata_props
        if prop.key.startswith(METADATA_PREFIX)
    }


def _finish_graph(raw: Path, target: Path, metadata: dict[str, str]) -> None:
    import onnx

    proto = onnx.load(str(raw))
    rewritten = rewrite_boolean_where(proto)
    nodes_before = len(proto.graph.node)
    onnx.save(proto, str(raw))
    optimise_offline(raw, target)
    proto = onnx.load(str(target))
    proto.producer_name = "seem_ros"
    _drop_unused_opset_imports(proto)
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=METADATA_PREFIX + key, value=value)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(target))
    LOG.info(
        "%s: %d boolean Where rewritten, %d -> %d nodes after offline optimisation",
        target.name,
        rewritten,
        nodes_before,
        len(proto.graph.node),
    )


def _drop_unused_opset_imports(proto: onnx.ModelProto) -> None:
    """ONNX Runtime's optimiser declares every domain it knows; keep only those nodes use."""
    used = {node.domain for node in proto.graph.node} | {""}
    kept = [op for op in proto.opset_import if op.domain in used or op.domain == "ai.onnx"]
    del proto.opset_import[:]
    proto.opset_import.extend(kept)


def _torch_export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    target: Path,
    *,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]] | None,
    opset: int,
    metadata: dict[str, str],
) -> None:
    """Trace with the TorchScript exporter (``dynamo=False``): both exporters work on this model,
    the tracer is ~10x faster to export and needs no onnxscript.

    The wrapper is put in eval mode first: the exporter restores the wrapper's mode afterwards,
    recursively, and a fresh wrapper is in training mode (BatchNorm statistics would drift)."""
    module.eval()
    with tempfile.TemporaryDirectory() as scratch, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # the text tower's end-of-text gather uses argmax indices, never negative ones
        warnings.filterwarnings("ignore", message="Exporting aten::index operator")
        raw = Path(scratch) / "raw.onnx"
        try:
            torch.onnx.export(
                module,
                args,
                str(raw),
                dynamo=False,
                opset_version=opset,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
            )
        except Exception as error:  # the exporter raises many types
            raise ExportError(f"torch.onnx.export failed for {target.name}: {error}") from error
        _finish_graph(raw, target, metadata)


# ----------------------------------------------------------------------------- exports
def default_input_hw(model: AnySEEM) -> tuple[int, int]:
    """The encoder input exported by default: a square frame's input (give ``input_hw`` for
    other camera shapes; frames of another shape are letterboxed into the exported input)."""
    return (model.config.image_size, model.config.image_size)


def example_decoder_inputs(
    model: AnySEEM,
    groups: int,
    slots: int = DEFAULT_EXPORT_SLOTS,
    input_hw: tuple[int, int] | None = None,
    *,
    visual_only: bool = False,
) -> tuple[torch.Tensor, ...]:
    """Features of a blank image + all-padding prompts for ``groups`` objects. ``visual_only``
    (official models): no phrase tokens and no reference pixels, so the traced graph has
    neither the grounding nor the reference branch."""
    height, width = input_hw or default_input_hw(model)
    with torch.inference_mode():
        features = model.encode(torch.zeros(1, 3, height, width))
    if is_official(model):
        spec = model.config.official
        prompts = empty_official_prompt_tensors(
            groups=groups,
            samples=spec.max_spatial_len,
            text_length=0 if visual_only else spec.text_context_length,
            embed_dim=spec.dim_proj,
            memory_slots=spec.spatial_memories,
            mask_hw=tuple(features[0].shape[-2:]),
            reference_samples=0 if visual_only else spec.max_spatial_len,
            hidden_dim=spec.hidden_dim,
            mask_dim=spec.mask_dim,
        )
    else:
        layout = PromptLayout.of(model)
        prompts = layout.empty(
            groups=groups, input_hw=(height, width), slots=min(slots, layout.slots)
        )
    prompts.group_valid[:] = 1.0
    return (
        *(f.clone() for f in features),
        *(torch.from_numpy(v) for v in prompts.as_dict().values()),
    )


def export_encoder(
    model: AnySEEM,
    target: Path,
    *,
    opset: int,
    metadata: dict[str, str],
    input_hw: tuple[int, int] | None = None,
) -> None:
    """Encoder graph with a dynamic batch axis (several cameras can share one call)."""
    image = torch.zeros(1, 3, *(input_hw or default_input_hw(model)))
    names = feature_names(model.config.family)
    # batch is axis 0, except for the per-level stacks of attention keys / values (L, B, ...)
    batch_axis = {
        name: {1 if name.startswith("attn_") else 0: "batch"} for name in (IMAGE_INPUT, *names)
    }
    _torch_export(
        EncoderGraph(model),
        (image,),
        target,
        input_names=[IMAGE_INPUT],
        output_names=list(names),
        dynamic_axes=batch_axis,
        opset=opset,
        metadata={**metadata, "graph": "encoder"},
    )


def export_decoder(
    model: AnySEEM,
    target: Path,
    *,
    groups: int,
    opset: int,
    metadata: dict[str, str],
    slots: int = DEFAULT_EXPORT_SLOTS,
    input_hw: tuple[int, int] | None = None,
    visual_only: bool = False,
) -> None:
    """Decoder graph for exactly ``groups`` prompted objects with ``slots`` visual-prompt slots
    each (B = 1, static shapes); ``visual_only``: see :func:`example_decoder_inputs`."""
    if groups < 1:
        raise ExportError(f"a decoder graph needs at least one group, got {groups}")
    _torch_export(
        DecoderGraph(model),
        example_decoder_inputs(model, groups, slots, input_hw, visual_only=visual_only),
        target,
        input_names=list(decoder_input_names(model)),
        output_names=list(decoder_output_names(model)),
        dynamic_axes=None,
        opset=opset,
        metadata={**metadata, "graph": "decoder", "groups": str(groups), "slots": str(slots)},
    )


def export_text_encoder(
    model: AnySEEM, target: Path, *, opset: int, metadata: dict[str, str]
) -> None:
    """Text tower graph with a dynamic number of phrases."""
    if is_official(model):
        tokens = model.language.tokenize(["a photo of a mug", "door handle"]).input_ids
        _torch_export(
            OfficialTextGraph(model),
            (tokens,),
            target,
            input_names=[TEXT_INPUT],
            output_names=list(OFFICIAL_TEXT_OUTPUTS),
            dynamic_axes={name: {0: "texts"} for name in (TEXT_INPUT, *OFFICIAL_TEXT_OUTPUTS)},
            opset=opset,
            metadata={**metadata, "graph": "text_encoder"},
        )
        return
    if model.official_text:
        graph: nn.Module = OfficialSentenceGraph(model)
        tokens = model.text_encoder.tokenize(["a photo of a mug", "door handle"]).input_ids
    else:
        graph = TextEncoderGraph(model)
        tokens = model.text_encoder.tokenize(["a photo of a mug", "door handle"])
    _torch_export(
        graph,
        (tokens,),
        target,
        input_names=[TEXT_INPUT],
        output_names=[TEXT_OUTPUT],
        dynamic_axes={TEXT_INPUT: {0: "texts"}, TEXT_OUTPUT: {0: "texts"}},
        opset=opset,
        metadata={**metadata, "graph": "text_encoder"},
    )


def export_model(
    model: AnySEEM,
    card: ModelCard,
    folder: Path,
    *,
    group_counts: tuple[int, ...] = DEFAULT_GROUP_COUNTS,
    slots: int = DEFAULT_EXPORT_SLOTS,
    opset: int = DEFAULT_OPSET,
    text_encoder: bool = True,
    input_hw: tuple[int, int] | None = None,
) -> ExportManifest:
    """Export every graph of ``model`` into ``folder`` and write its manifest.

    ``input_hw``: the encoder's (padded) input size, which follows the camera's aspect
    (``Segmenter.transform_for(h, w).input_hw``; default: a square frame's)."""
    require_onnx()
    if not group_counts or any(g < 1 for g in group_counts):
        raise ExportError(f"group counts must be positive integers, got {group_counts}")
    if opset < 17:
        raise ExportError(f"opset {opset} is too old: LayerNormalization needs 17 or newer")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    fingerprint = model_fingerprint(model)
    metadata = card_metadata(card, fingerprint)
    official = is_official(model)
    input_hw = tuple(input_hw or default_input_hw(model))  # type: ignore[assignment]
    divisor = model.config.official.size_divisibility if official else OUR_INPUT_DIVISOR
    if any(side % divisor for side in input_hw):
        raise ExportError(f"input size {input_hw} must be multiples of {divisor}")
    manifest = ExportManifest(
        model_sha256=fingerprint,
        config_name=model.config.name,
        image_size=model.config.image_size,
        opset=opset,
        encoder="encoder.onnx",
        decoders={g: f"decoder_g{g}.onnx" for g in sorted(set(group_counts))},
        text_encoder="text_encoder.onnx" if text_encoder else None,
        slots=None if official else min(slots, model.config.decoder.max_visual_prompts),
        family=model.config.family,
        input_hw=input_hw,  # type: ignore[arg-type]
        samples=model.config.official.max_spatial_len if official else None,
        text_length=model.config.official.text_context_length if official else None,
        visual_decoders=(
            {g: f"decoder_g{g}_visual.onnx" for g in sorted(set(group_counts))} if official else {}
        ),
        folder=folder,
    )
    export_encoder(
        model, folder / manifest.encoder, opset=opset, metadata=metadata, input_hw=input_hw
    )
    for groups, name in manifest.decoders.items():
        export_decoder(
            model,
            folder / name,
            groups=groups,
            slots=manifest.slots or DEFAULT_EXPORT_SLOTS,
            opset=opset,
            metadata=metadata,
            input_hw=input_hw,
        )
    for groups, name in manifest.visual_decoders.items():
        export_decoder(
            model,
            folder / name,
            groups=groups,
            opset=opset,
            metadata=metadata,
            input_hw=input_hw,
            visual_only=True,
        )
    if manifest.text_encoder:
        export_text_encoder(model, folder / manifest.text_encoder, opset=opset, metadata=metadata)
    names = [
        manifest.encoder,
        *manifest.decoders.values(),
        *manifest.visual_decoders.values(),
        *filter(None, [manifest.text_encoder]),
    ]
    manifest.graph_sha256 = {name: file_sha256(folder / name) for name in names}
    # what Segmenter.from_export needs besides the graphs, to run without PyTorch
    runtime_files = write_runtime_files(model, card, folder)
    manifest.card, manifest.heads = runtime_files["card"], runtime_files["heads"]
    manifest.bpe_vocab = runtime_files["bpe_vocab"]
    manifest.save()
    return manifest
