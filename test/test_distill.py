"""Distillation core: the frame grid, the teacher pass, the student in the teacher's text space,
the losses moving the student towards the teacher, and agreement."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from seem_ros.distill.agreement import agreement
from seem_ros.distill.frame_grid import area_matrix, model_grid_to_frame_grid, to_frame_grid
from seem_ros.distill.record import FrameLabel, frame_grid_hw
from seem_ros.distill.step import DistillStep
from seem_ros.distill.student import build_student
from seem_ros.distill.teacher import LabelSettings, TeacherLabeler
from seem_ros.distill.trainer import Distiller, DistillError, decay_groups
from seem_ros.model.build import build_model, save_model
from seem_ros.model.card import ModelCard
from seem_ros.model.official.config import OfficialConfig
from seem_ros.segmenter import Segmenter
from seem_ros.transforms import ResizeTransform

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "models" / "seem_tiny_demo.safetensors"
CONFIGS = ROOT / "seem_ros" / "model" / "configs"
PHRASES = ("the red circle", "the blue square", "the floor", "the leftmost star")


@pytest.fixture(scope="module")
def teacher() -> Segmenter:
    return Segmenter.from_pretrained(DEMO)


@pytest.fixture(scope="module")
def scenes() -> list[np.ndarray]:
    from seem_ros.data.datasets import SceneDataset

    dataset = SceneDataset("val", 4)
    return [dataset[i].image for i in range(4)]


@pytest.fixture(scope="module")
def labeller(teacher) -> TeacherLabeler:
    settings = LabelSettings(classes=tuple(teacher.card.vocabulary), phrases=PHRASES)
    return TeacherLabeler(teacher, settings)


@pytest.fixture(scope="module")
def labels(labeller, scenes) -> list[FrameLabel]:
    return [labeller.label(image, key=f"val:{i}") for i, image in enumerate(scenes)]


def test_area_matrix_averages_and_keeps_constants():
    matrix = area_matrix(10, 4)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    # cell 0 covers [0, 2.5): (0 + 1 + 0.5 * 2) / 2.5
    np.testing.assert_allclose(matrix @ np.arange(10.0), [0.8, 3.2, 5.8, 8.2])


@pytest.mark.parametrize(
    "transform",
    [
        ResizeTransform(240, 320, 256),
        ResizeTransform(480, 360, 512, fit="shortest", divisor=32),
    ],
)
def test_the_frame_grid_map_carries_the_model_grid_onto_the_frame(transform):
    grid_hw = tuple(side // 4 for side in transform.input_hw)
    frame = frame_grid_hw(transform.height, transform.width, 64)
    rows, cols = model_grid_to_frame_grid(transform, grid_hw, frame)
    constant = to_frame_grid(np.full((1, *grid_hw), 3.0, np.float32), rows, cols)
    np.testing.assert_allclose(constant, 3.0, rtol=1e-5)
    # a logit map with a left half on: the frame grid's left half is on, like the image's
    logits = np.full((1, *grid_hw), -5.0, np.float32)
    resized_w = transform.resized_hw[1] * grid_hw[1] / transform.input_hw[1]
    logits[..., : int(resized_w / 2)] = 5.0
    mapped = to_frame_grid(logits, rows, cols)[0] > 0
    direct = transform.logits_to_image(logits)[0] > 0
    left = direct[:, : transform.width // 2].mean()
    assert left == 1.0
    assert abs(mapped[:, : frame[1] // 2].mean() - 1.0) < 0.05
    assert mapped[:, frame[1] // 2 + 2 :].mean() < 0.05


def test_a_label_holds_generic_outputs_and_answers_on_the_frame_grid(labels, teacher):
    label = labels[0]
    assert label.query_logits.shape[1:] == frame_grid_hw(256, 256, 64)
    assert len(label.query_index) == len(label.query_probs) == len(label.query_embeds) > 0
    assert label.query_probs.shape[1] == len(teacher.card.vocabulary) + 1
    np.testing.assert_allclose(
        np.linalg.norm(label.query_embeds.astype(np.float32), axis=1), 1.0, atol=1e-2
    )
    kinds = {a.kind for a in label.answers}
    assert {"click", "box", "scribble", "phrase"} <= kinds
    for answer in label.answers:
        assert answer.coverage.shape == (64, 64)
        if answer.round == 2:
            source = label.answers[answer.memory_from]
            assert source.kind == "click" and source.round == 1
            assert len(answer.points) == len(source.points) + 1
            np.testing.assert_array_equal(answer.points[:1], source.points)


def test_labels_are_deterministic_per_key_and_survive_packing(labeller, scenes, labels):
    again = labeller.label(scenes[0], key="val:0")
    packed = FrameLabel.from_arrays(again.to_arrays("f3/"), "f3/")
    original = labels[0]
    np.testing.assert_array_equal(packed.image, original.image)
    np.testing.assert_array_equal(packed.query_logits, original.query_logits)
    assert [(a.kind, a.text, a.round) for a in packed.answers] == [
        (a.kind, a.text, a.round) for a in original.answers
    ]
    for mine, theirs in zip(packed.answers, original.answers):
        np.testing.assert_array_equal(mine.coverage, theirs.coverage)
        np.testing.assert_array_equal(mine.points, theirs.points)


def test_a_non_square_frame_is_labelled_in_its_own_aspect(labeller, scenes):
    frame = np.ascontiguousarray(scenes[1][:, :192])
    label = labeller.label(frame, key="crop")
    assert label.query_logits.shape[1:] == frame_grid_hw(256, 192, 64) == (64, 48)
    assert all(a.coverage.shape == (64, 48) for a in label.answers)


def test_the_teacher_agrees_with_its_own_labels(teacher, labels):
    result = agreement(teacher, labels, classes=list(teacher.card.vocabulary), mask_size=64)
    assert result["frames"] == len(labels)
    assert result["generic_miou"] > 0.95
    assert result["class_agreement"] > 0.95
    assert result["prompted_miou"] > 0.95
    assert {"click1", "click2", "box", "scribble", "phrase"} <= set(result["prompted_miou_by_kind"])


def test_a_student_keeps_the_teachers_text_space_frozen(teacher):
    student = build_student("student_nano", teacher.model)
    assert student.config.image_size == 160 and student.config.decoder.hidden_dim == 48
    texts = ["the red circle", "floor"]
    with torch.no_grad():
        np.testing.assert_allclose(
            student.encode_text(texts).numpy(),
            teacher.model.encode_text(texts).numpy(),
            atol=1e-6,
        )
    assert not any(p.requires_grad for p in student.text_encoder.parameters())
    assert torch.equal(student.logit_scale, teacher.model.logit_scale)
    assert not student.logit_scale.requires_grad  # the teacher's temperature, kept
    # initialised from slices of the teacher: the first backbone filters are the teacher's
    first = "backbone.stem.0.0.weight"
    state, teacher_state = student.state_dict(), teacher.model.state_dict()
    shape = state[first].shape
    assert torch.equal(state[first], teacher_state[first][: shape[0], : shape[1]])


def test_a_student_can_start_from_an_earlier_student_of_another_size(teacher, tmp_path):
    """``--init-from``: a new input size and a narrower backbone keep the earlier student's
    decoder whole and its backbone's leading slices; the text tower stays the teacher's."""
    earlier = build_student("student_nano", teacher.model)
    with torch.no_grad():
        for param in earlier.parameters():
            if param.requires_grad:
                param.add_(0.01)  # unlike the teacher's slices
    narrower = yaml.safe_load((CONFIGS / "student_nano.yaml").read_text())
    narrower["image_size"] += 32
    narrower["backbone"]["channels"] = [c // 2 for c in narrower["backbone"]["channels"]]
    config = tmp_path / "narrower.yaml"
    config.write_text(yaml.safe_dump(narrower))

    student = build_student(config, teacher.model, init_from=earlier)

    state, earlier_state = student.state_dict(), earlier.state_dict()
    decoder = [name for name in state if name.startswith("decoder.")]
    assert decoder and all(torch.equal(state[n], earlier_state[n]) for n in decoder)
    stem = state["backbone.stem.0.0.weight"]
    assert torch.equal(stem, earlier_state["backbone.stem.0.0.weight"][: stem.shape[0]])
    texts = ["the red circle"]
    with torch.no_grad():
        assert torch.equal(student.encode_text(texts), teacher.model.encode_text(texts))


def test_a_student_grown_from_a_smaller_one_starts_as_its_function(teacher, tmp_path):
    """``--init-from`` a smaller student: wider backbone stages and extra residual blocks start
    silent (new input channels zero, new blocks' last BatchNorm zero), so the grown student
    computes what the smaller one computed and distillation only has to add to it."""
    smaller = build_student("student_nano", teacher.model)
    with torch.no_grad():
        for param in smaller.parameters():
            if param.requires_grad:
                param.add_(0.01 * torch.randn_like(param))  # unlike the teacher's slices
    for module in smaller.modules():
        if isinstance(module, torch.nn.BatchNorm2d):  # trained-looking running statistics
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    grown_config = yaml.safe_load((CONFIGS / "student_nano.yaml").read_text())
    nano_backbone = grown_config["backbone"]
    grown_config["backbone"] = {
        "name": "conv",
        "channels": [c + 8 for c in nano_backbone["channels"]],
        "blocks": [b + 1 for b in nano_backbone["blocks"]],
    }
    config = tmp_path / "grown.yaml"
    config.write_text(yaml.safe_dump(grown_config))

    grown = build_student(config, teacher.model, init_from=smaller)

    smaller.eval()
    grown.eval()
    image = torch.rand(1, 3, 160, 160)
    with torch.no_grad():
        before, after = smaller.encode(image), grown.encode(image)
    # the decoder is copied whole, so the same features mean the same answers
    for map_before, map_after in zip(before, after, strict=True):
        torch.testing.assert_close(map_after, map_before, atol=1e-4, rtol=1e-4)
    decoder = {n: t for n, t in grown.state_dict().items() if n.startswith("decoder.")}
    assert all(torch.equal(t, smaller.state_dict()[n]) for n, t in decoder.items())
    # the grown parts are there to learn: the new residual blocks and channels are trainable
    new_block = grown.backbone.stages[0][2]
    assert float(new_block.conv2[1].weight.abs().sum()) == 0.0
    assert new_block.conv2[1].weight.requires_grad


def test_a_shorter_student_decoder_starts_from_the_teachers_last_layers(teacher):
    """The teacher's last layers attend the levels the student's layers attend
    (``SEEMDecoder.level_of_layer``), so those are the ones it starts from."""
    student = build_student("student_nano", teacher.model)
    offset = len(teacher.model.decoder.layers) - len(student.decoder.layers)
    assert offset > 0
    state, teacher_state = student.state_dict(), teacher.model.state_dict()
    for index, _ in enumerate(student.decoder.layers):
        name = f"decoder.layers.{index}.cross_attn.q.weight"
        donor = teacher_state[f"decoder.layers.{index + offset}.cross_attn.q.weight"]
        rows, columns = state[name].shape
        assert torch.equal(state[name], donor[:rows, :columns])
        assert student.decoder.level_of_layer(index) == teacher.model.decoder.level_of_layer(
            index + offset
        )


def test_distillation_decays_weight_matrices_only(teacher):
    """As in training: norms, biases and scalars are not pulled towards zero (a decayed
    temperature or "no object" logit would flatten every class distribution)."""
    student = build_student("student_nano", teacher.model)
    groups = decay_groups(student, 0.05)
    by_id = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    trainable = {n: p for n, p in student.named_parameters() if p.requires_grad}
    assert len(by_id) == sum(len(g["params"]) for g in groups) == len(trainable)
    assert by_id[id(trainable["void_logit"])] == 0.0
    assert by_id[id(trainable["decoder.layers.0.cross_norm.weight"])] == 0.0
    assert by_id[id(trainable["decoder.layers.0.cross_attn.q.bias"])] == 0.0
    assert by_id[id(trainable["decoder.layers.0.cross_attn.q.weight"])] == 0.05
    assert by_id[id(trainable["backbone.stem.0.0.weight"])] == 0.05


def test_only_a_student_of_the_same_teacher_is_a_starting_point(teacher, tmp_path):
    student = build_student("student_nano", teacher.model)
    card = ModelCard(
        config=student.config, provenance={"distilled_from": {"name": "t", "sha256": "aa"}}
    )
    path = save_model(student, tmp_path / "earlier.safetensors", card)
    assert isinstance(Distiller._earlier_student(str(path), "aa"), type(student))
    with pytest.raises(DistillError, match="not a student of this teacher"):
        Distiller._earlier_student(str(path), "bb")


def test_a_student_of_an_official_teacher_carries_the_official_language_encoder():
    from official_models import small_official_config

    teacher = build_model(small_official_config(), seed=0)
    student = build_student("student_nano", teacher)
    assert student.official_text and student.config.text.tower == "official_v1"
    names = ["person", "dog"]
    with torch.no_grad():
        np.testing.assert_allclose(
            student.embed_class_names(names).numpy(),
            teacher.embed_class_names(names).numpy(),
            atol=1e-6,
        )
        embeds = torch.nn.functional.normalize(
            torch.randn(5, student.config.text.embed_dim), dim=-1
        )
        logits = student.classify(embeds, student.embed_class_names(names))
    assert logits.shape == (5, 3)  # two names + the official background
    assert isinstance(teacher.config.official, OfficialConfig)


def fresh_student_step(teacher: Segmenter) -> tuple[torch.nn.Module, Segmenter, DistillStep]:
    """A randomly started nano student in train mode, its segmenter (for its transforms) and a
    distillation step for the teacher's vocabulary on a 64-cell frame grid."""
    student = build_student("student_nano", teacher.model, init_from_teacher=False).train()
    view = Segmenter(student, ModelCard(config=student.config))
    step = DistillStep(
        student,
        transform_for=view.transform_for,
        classes=list(teacher.card.vocabulary),
        mask_size=64,
    )
    return student, view, step


def test_distillation_steps_move_the_student_towards_the_teacher(teacher, labels):
    torch.manual_seed(0)
    student, _, step = fresh_student_step(teacher)
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-3)
    rng = np.random.default_rng(0)
    totals = []
    for _ in range(12):
        losses = step(labels[:2], rng)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        totals.append(float(losses["total"].detach()))
        assert set(losses) >= {"cls", "bce", "dice", "embed", "a_bce", "a_dice", "a_score"}
    assert np.mean(totals[-3:]) < 0.8 * np.mean(totals[:3])
    # the frozen text tower did not move
    with torch.no_grad():
        np.testing.assert_allclose(
            student.encode_text(["floor"]).numpy(),
            teacher.model.encode_text(["floor"]).numpy(),
            atol=1e-6,
        )


def test_frames_of_several_shapes_distil_in_one_batch(teacher, labeller, scenes):
    """A camera's 4:3 frames and square ones: each is seen at the student's own scale, padded
    to the widest input, and its logits land on its own frame grid."""
    import cv2

    wide = cv2.resize(scenes[2], (341, 256), interpolation=cv2.INTER_AREA)
    batch = [labeller.label(wide, key="wide"), labeller.label(scenes[3], key="square")]
    student, view, step = fresh_student_step(teacher)
    losses = step(batch, np.random.default_rng(0))
    assert all(torch.isfinite(v) for v in losses.values())
    losses["total"].backward()
    assert student.decoder.query_feat.grad is not None
    square_alone, wide_alone = view.transform_for(256, 256), view.transform_for(256, 341)
    assert wide_alone.input_hw[1] > wide_alone.input_hw[0] == square_alone.input_hw[1]
    padded = [wide_alone, replace(square_alone, canvas_hw=wide_alone.input_hw)]
    views = [step._view(label, t, np.random.default_rng(0)) for label, t in zip(batch, padded)]
    grid_h, grid_w = step.layout.mask_hw(wide_alone.input_hw)
    assert [v.rows.shape for v in views] == [(48, grid_h), (64, grid_h)]
    assert [v.cols.shape for v in views] == [(64, grid_w), (64, grid_w)]
