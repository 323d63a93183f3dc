"""Compare OUR official-SEEM implementation, through the public API, with a reference .npz
written by ``reference.py`` from the official code.

    python tools/official_parity/compare.py ref.npz [--model DST.safetensors | --weights SRC]

The model: ``--model`` (already converted), else the reference's weights converted here with
``seem-ros convert`` (``--weights SRC`` for a reference made from a file; a reference made with
``--seed S`` is rebuilt from ``random_official_state_dict`` and saved as an official-keys
.safetensors first). It is loaded with ``Segmenter.from_pretrained`` (negative-click cut off).

Prompts are replayed from the scenario stored in the reference: integer pixel ``[x, y]`` is
passed to the API as its centre ``(x + 0.5, y + 0.5)`` (the API's continuous convention,
``seem_ros.prompts``); round 2 repeats round 1's prompts plus the new ones and passes round 1's
``Instance.memory``. Printed: text cosine (min), semantic pixel agreement, IoU of every mask
(logit > 0 on both sides), with the targets; extra diagnostics (prompt-mask pixels that differ,
memory logits' error) where the API exposes them. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", help="ref.npz from reference.py")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="converted seem_ros .safetensors (card beside it)")
    source.add_argument("--weights", help="the official-keys file the reference was made from")
    parser.add_argument("--workdir", help="where converted weights go (default: a temp dir)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument(
        "--pixel-coords",
        choices=("centre", "index"),
        default="centre",
        help="pass integer pixel [x, y] to the API as its centre (x + 0.5, y + 0.5), the API's "
        "documented convention (default), or as the bare index (x, y), to diagnose an offset",
    )
    return parser.parse_args(argv)


# ------------------------------------------------------------------ weights
def converted_model(args, meta: dict, workdir: Path) -> Path:
    if args.model:
        return Path(args.model)
    weights = meta["weights"]
    if args.weights:
        source = Path(args.weights)
    elif "seed" in weights:
        import torch
        from safetensors.torch import save_file

        from seem_ros.model.official.manifest import random_official_state_dict

        source = workdir / f"official_{meta['config']}_seed{weights['seed']}.safetensors"
        state = random_official_state_dict(meta["config"], seed=weights["seed"])
        save_file({k: v.contiguous() for k, v in state.items()}, str(source))
        del state, torch
    else:
        raise SystemExit(f"the reference used {weights}; pass that file with --weights")
    target = workdir / f"converted_{source.stem}.safetensors"
    command = [str(Path(sys.executable).with_name("seem-ros")), "convert", str(source)]
    if not Path(command[0]).exists():
        command = [sys.executable, "-m", "seem_ros.cli", "convert", str(source)]
    subprocess.run([*command, "--out", str(target)], check=True)
    return target


# ------------------------------------------------------------------ prompts
OFFSET = 0.5  # pixel index -> API coordinate (set from --pixel-coords)


def centre(xy) -> list[float]:
    return [xy[0] + OFFSET, xy[1] + OFFSET]


def object_prompt(obj: dict, rounds: int, memory=None):
    """The API prompt of one scenario object after ``rounds`` rounds (prompts accumulate)."""
    from seem_ros.prompts import ObjectPrompt, Points, Scribble

    clicks, scribbles = [], []
    for index in range(1, rounds + 1):
        spec = obj.get(f"round{index}", {})
        clicks += spec.get("clicks", [])
        scribbles += [Scribble(np.array([centre(p) for p in s])) for s in spec.get("scribbles", [])]
        scribbles += [
            Scribble(np.array([centre(p) for p in s]), positive=False)
            for s in spec.get("negative_scribbles", [])
        ]
    points = None
    if clicks:
        points = Points(np.array([centre(c) for c in clicks]), np.array([c[2] for c in clicks]))
    return ObjectPrompt(points=points, scribbles=tuple(scribbles), memory=memory)


def api_prompt_masks(segmenter, prompt, height: int, width: int):
    """Our (positive, negative) prompt masks for diagnostics, if the API exposes them."""
    try:
        from seem_ros.official_prompts import prompt_masks
    except ImportError:
        return None
    pos, neg = prompt_masks(prompt, segmenter.transform_for(height, width))
    return pos[:height, :width], neg[:height, :width]


def generic_query_masks(segmenter, image: np.ndarray) -> np.ndarray | None:
    """(101, H/4, W/4) object-query mask logits from our engine (no prompts), if reachable."""
    try:
        from seem_ros.official_prompts import build_official_prompt_tensors
    except ImportError:
        return None
    encoded = segmenter.encode_image(image)
    tensors = build_official_prompt_tensors(
        [], encoded.transform, segmenter.layout, embed_phrase=segmenter.phrase_embedding
    )
    outputs = segmenter.engine.decode(encoded.features, tensors)
    return np.asarray(outputs["object_masks"][0], dtype=np.float32)


# ------------------------------------------------------------------ metrics
def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


class Table:
    def __init__(self, targets: dict):
        self.targets = targets
        self.rows: list[dict] = []

    def add(self, name: str, kind: str, value: float, note: str = "") -> None:
        target = self.targets[kind]
        ok = value >= target
        self.rows.append(
            {"name": name, "metric": kind, "value": value, "target": target, "ok": ok, "note": note}
        )

    def print(self) -> bool:
        print(f"\n{'check':34s} {'metric':20s} {'value':>9s} {'target':>8s}  result  notes")
        for row in self.rows:
            print(
                f"{row['name']:34s} {row['metric']:20s} {row['value']:9.5f} "
                f"{row['target']:8.4f}  {'PASS' if row['ok'] else 'FAIL':6s}  {row['note']}"
            )
        passed = all(row["ok"] for row in self.rows)
        print(f"\n{sum(r['ok'] for r in self.rows)} of {len(self.rows)} checks pass")
        return passed


# ------------------------------------------------------------------ main
def run(args) -> tuple[Table, dict]:
    from seem_ros.prompts import ClassNames, ReferringText
    from seem_ros.segmenter import Segmenter

    with np.load(args.reference) as data:
        ref = {key: data[key] for key in data.files}
    meta = json.loads(str(ref["meta"]))
    scenarios = meta["scenarios"]
    table = Table(scenarios["targets"])
    image = ref["image"]
    height, width = image.shape[:2]
    timings: dict[str, float] = {}

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        model_path = converted_model(args, meta, workdir)
        timings["convert"] = time.perf_counter() - start
        start = time.perf_counter()
        segmenter = Segmenter.from_pretrained(model_path, negative_click_cut=False)
    timings["load"] = time.perf_counter() - start
    if min(height, width) != segmenter.image_size:
        raise SystemExit(
            f"the reference image is {width}x{height}: the official run used it as is, our API "
            f"resizes its short side to {segmenter.image_size}; record the reference on an image "
            f"whose short side is {segmenter.image_size}"
        )

    # texts
    start = time.perf_counter()
    ours = segmenter.text_embeddings(list(scenarios["texts"]))
    timings["text_embeddings"] = time.perf_counter() - start
    theirs = ref["text.embeddings"]
    cosines = (ours * theirs).sum(1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1)
    )
    worst = int(cosines.argmin())
    table.add("text embeddings (min)", "text_cosine", float(cosines.min()), f"worst: text {worst}")

    # semantic
    if "semantic.argmax" in ref:
        names = meta.get("semantic_classes")
        if names is None:
            from seem_ros.model.official.vocabulary import COCO_PANOPTIC_CLASSES as names
        start = time.perf_counter()
        result = segmenter.segment(image, ClassNames(tuple(names)), task="semantic")
        timings["semantic"] = time.perf_counter() - start
        agree = result.semantic == ref["semantic.argmax"]
        clear = ref["semantic.margin"] > 1e-3
        table.add(
            "semantic argmax",
            "semantic_agreement",
            float(agree.mean()),
            f"{float(agree[clear].mean()):.5f} where margin > 1e-3 ({clear.mean():.3f} of px)",
        )
        if "semantic.class_embeddings" in ref:
            ours_c = segmenter.class_embeddings(list(ClassNames(tuple(names)).names))
            theirs_c = ref["semantic.class_embeddings"]
            if ours_c.shape == theirs_c.shape:
                cos = (ours_c * theirs_c).sum(1) / (
                    np.linalg.norm(ours_c, axis=1) * np.linalg.norm(theirs_c, axis=1)
                )
                table.add("class embeddings (min)", "text_cosine", float(cos.min()))
            else:
                table.add(
                    "class embeddings shape",
                    "text_cosine",
                    0.0,
                    f"ours {ours_c.shape} official {theirs_c.shape}",
                )

    # generic object masks (diagnostic: the decoder's 101 query masks before any selection)
    if "generic.pred_masks" in ref:
        masks = generic_query_masks(segmenter, image)
        if masks is not None:
            theirs_m = ref["generic.pred_masks"]
            ious = [iou(a > 0, b > 0) for a, b in zip(masks, theirs_m)]
            err = np.abs(masks - theirs_m).max() / theirs_m.std()
            table.add(
                "generic query masks (min of 101)",
                "mask_iou",
                float(min(ious)),
                f"1/4 grid; max err/std {err:.1e}",
            )

    # referring
    start = time.perf_counter()
    result = segmenter.segment(image, ReferringText(scenarios["referring"]))
    timings["referring"] = time.perf_counter() - start
    prompted = [i for i in result.instances if i.source == "prompt"]
    table.add("referring mask", "mask_iou", iou(prompted[0].mask, ref["referring.logits"] > 0))

    # interactive
    for case in scenarios["cases"]:
        memories = [None] * len(case["objects"])
        for rounds in (1, 2):
            prefix = f"{case['name']}.round{rounds}."
            prompts = [
                object_prompt(scenarios["objects"][name], rounds, memories[index])
                for index, name in enumerate(case["objects"])
            ]
            start = time.perf_counter()
            result = segmenter.segment(image, prompts)
            timings[f"{case['name']}.round{rounds}"] = time.perf_counter() - start
            prompted = [i for i in result.instances if i.source == "prompt"]
            for index, name in enumerate(case["objects"]):
                notes = []
                masks = api_prompt_masks(segmenter, prompts[index], height, width)
                if masks is not None:
                    wrong = sum(
                        int((ours_m != ref[prefix + part][index]).sum())
                        for ours_m, part in zip(masks, ("pos_mask", "neg_mask"))
                    )
                    notes.append(f"prompt px differing: {wrong}")
                memory = prompted[index].memory
                if memory is not None and memory.tokens is not None:
                    official = ref[prefix + "prev_mask"][index]
                    if memory.tokens.shape == official.shape:
                        err = np.abs(memory.tokens - official).max() / official.std()
                        notes.append(f"prev_mask err/std {err:.1e}")
                memories[index] = memory
                label = f"{case['name']} r{rounds} {name}"
                value = iou(prompted[index].mask, ref[prefix + "logits"][index] > 0)
                table.add(label, "mask_iou", value, "; ".join(notes))
    return table, timings


def main(argv=None) -> int:
    global OFFSET
    args = parse_args(argv)
    OFFSET = 0.5 if args.pixel_coords == "centre" else 0.0
    table, timings = run(args)
    passed = table.print()
    print("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": table.rows, "timings_s": timings}, indent=1))
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
