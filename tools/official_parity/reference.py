"""Run the OFFICIAL SEEM v1 code on one image and write every output the parity check needs.

    python tools/official_parity/reference.py --official-repo /tmp/official \
        --config seem_focalt_v1 --seed 0 [--image IMG.png] --out ref.npz

Weights: ``--seed S`` (random weights of the official keys and shapes,
``seem_ros.model.official.manifest.random_official_state_dict``) or ``--weights FILE`` (an
official-keys state dict, .pt or .safetensors). The image must be RGB; without ``--image`` the
scenario's synthetic image is used. Prompts, texts and the phrase come from ``scenarios.json``.

Everything runs on the CPU in float32 with the official random draws replaced by the project's
rules (``_official.py``). The .npz holds (names use ``.`` as separator):

* ``image`` (H, W, 3) uint8 and ``meta`` (a JSON string: config, weights, scenario, timings, rules);
* ``text.input_ids`` / ``text.attention_mask`` / ``text.embeddings`` (N, 512): official
  ``forward_language(norm=True)`` of each text on its own, no templates;
* ``backbone.res2`` .. ``backbone.res5``; ``pixel.mask_features``; ``pixel.multi_scale.0..2``
  (the official order: strides 32, 16, 8), batch dimension dropped;
* ``semantic.class_embeddings`` (134, 512): official ``get_text_embeddings(COCO_PANOPTIC_CLASSES
  + ["background"], is_eval=True)``; ``generic.pred_logits`` (101, 134), ``generic.pred_masks``
  (101, H/4, W/4); ``semantic.argmax`` (H, W) uint8 over the 133 classes, ``semantic.max`` and
  ``semantic.margin`` (best minus second-best score);
* ``referring.input_ids`` / ``.attention_mask`` / ``.logits`` (H, W) / ``.low_res`` (H/4, W/4) /
  ``.matched_query``: the official ``evaluate_grounding`` flow for the phrase;
* per interactive case and round, ``<case>.round<r>.``: ``pos_mask`` / ``neg_mask`` (c, H, W)
  bool (what was fed), ``prev_mask`` (c, H/4, W/4) logits, ``logits`` (c, H, W) (bilinear to the
  input size), ``memory_indices`` (round 2), and for the cases in ``layer_masks``,
  ``layer_masks`` (10, 3c, H/4, W/4): the spatial queries' masks from the initial prediction
  and each of the 9 decoder layers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _official as off  # noqa: E402
import scenario as scn  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official-repo", required=True, help="official SEEM v1.0 checkout")
    parser.add_argument("--config", default="seem_focalt_v1", choices=sorted(off.OFFICIAL_CONFIGS))
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--seed", type=int, default=0, help="random official weights (default 0)")
    weights.add_argument("--weights", help="official-keys state dict (.pt / .safetensors)")
    parser.add_argument("--image", help="RGB image (default: the scenario's synthetic image)")
    parser.add_argument("--scenarios", default=str(scn.SCENARIOS))
    parser.add_argument("--out", required=True, help="output .npz")
    parser.add_argument(
        "--no-semantic",
        action="store_true",
        help="skip the templated 134-class embeddings and the semantic run "
        "(the slow part: ~81 x 134 sentences)",
    )
    parser.add_argument(
        "--exact-class-embeddings",
        action="store_true",
        help="run the 134 x 81 templated sentences through the untouched official text path "
        "(77 positions each; ~45 CPU-minutes) instead of the causal-trimmed one, which is "
        "checked against it on --check-classes classes",
    )
    parser.add_argument(
        "--check-classes",
        type=int,
        default=2,
        help="classes embedded both ways to check the trimmed text path (default 2)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    return parser.parse_args(argv)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Cached:
    """Wraps the backbone / pixel decoder: the official flows recompute them from the same
    image; return the first result again (same input, so the same output) and time it once."""

    def __init__(self, fn, timer, name):
        self.fn, self.timer, self.name = fn, timer, name
        self.key = self.value = None

    def __call__(self, x):
        key = x if torch.is_tensor(x) else x["res5"]
        if self.key is not None and self.key.shape == key.shape and torch.equal(self.key, key):
            return self.value
        with self.timer(self.name):
            self.value = self.fn(x)
        self.key = key.clone()
        return self.value


def check_trimmed_text(lang, names: list[str], timer) -> dict:
    """Embed ``names`` (templated) by the untouched official path and the trimmed one."""
    with timer("class_embeddings_check_exact"):
        lang.get_text_embeddings(names, name="exact_check", is_eval=True)
    with timer("class_embeddings_check_trimmed"), off.causal_text_trimmed(lang):
        lang.get_text_embeddings(names, name="trimmed_check", is_eval=True)
    exact, trimmed = lang.exact_check_text_embeddings, lang.trimmed_check_text_embeddings
    cosine = float((exact * trimmed).sum(-1).min())
    result = {
        "classes": names,
        "min_cosine": cosine,
        "max_abs_diff": float((exact - trimmed).abs().max()),
    }
    if not cosine > 1 - 1e-6:
        raise SystemExit(f"the trimmed text path differs from the official one: {result}")
    return result


def spatial_layer_masks(predictor) -> np.ndarray:
    """(L + 1, 3c, h, w): the spatial queries' masks of every prediction of the last forward."""
    data = predictor.attention_data
    start, stop = data.query_index["queries_spatial"]
    return np.stack([off.to_numpy(m[0, start:stop]) for m in data.output["predictions_mask"]])


def run(args) -> dict:
    torch.set_grad_enabled(False)
    if args.threads:
        torch.set_num_threads(args.threads)
    timer = off.Timer()
    scenarios = scn.load_scenarios(args.scenarios)
    if args.image:
        from PIL import Image

        image = np.asarray(Image.open(args.image).convert("RGB"))
    else:
        spec = scenarios["image"]
        image = scn.synth_image(spec["seed"], spec["height"], spec["width"])
    height, width = image.shape[:2]
    if min(height, width) != 512:
        print(
            f"warning: {width}x{height} is used as is; seem_ros resizes the short side to 512, "
            "so compare.py needs a short side of 512",
            file=sys.stderr,
        )

    with timer("weights"):
        if args.weights:
            state = off.load_weights(args.weights)
            weights_info = {"file": str(args.weights), "sha256": sha256(Path(args.weights))}
        else:
            state = off.random_weights(args.config, args.seed)
            weights_info = {"random_official_state_dict": args.config, "seed": args.seed}
    with timer("build"):
        model, _ = off.build_official(args.official_repo, args.config, state)
    del state
    head = model.sem_seg_head
    predictor = head.predictor
    lang = predictor.lang_encoder
    model.backbone.forward = Cached(model.backbone.forward, timer, "backbone")
    head.pixel_decoder.forward_features = Cached(
        head.pixel_decoder.forward_features, timer, "pixel_decoder"
    )
    out: dict[str, np.ndarray] = {"image": image}

    # ------------------------------------------------------------------ texts (no templates)
    texts = scenarios["texts"]
    tokens = lang.tokenizer(
        texts,
        padding="max_length",
        truncation=True,
        max_length=lang.max_token_num,
        return_tensors="pt",
    )
    with timer("text_embeddings"):
        embeds = lang.forward_language((tokens["input_ids"], tokens["attention_mask"]), norm=True)
    out["text.input_ids"] = tokens["input_ids"].numpy()
    out["text.attention_mask"] = tokens["attention_mask"].numpy()
    out["text.embeddings"] = off.to_numpy(embeds)

    # ------------------------------------------------------------------ features
    images = off.normalise(model, image)
    features = model.backbone(images)
    mask_features, _, multi_scale = head.pixel_decoder.forward_features(features)
    for name, value in features.items():
        out[f"backbone.{name}"] = off.to_numpy(value[0])
    out["pixel.mask_features"] = off.to_numpy(mask_features[0])
    for index, value in enumerate(multi_scale):
        out[f"pixel.multi_scale.{index}"] = off.to_numpy(value[0])

    # ------------------------------------------------------------------ generic / semantic
    from utils.constants import COCO_PANOPTIC_CLASSES

    batched = [
        {
            "image": torch.from_numpy(image).permute(2, 0, 1).float(),
            "height": height,
            "width": width,
        }
    ]
    captured = {}
    head_forward = head.forward

    def capture_head(*a, **k):
        captured["outputs"] = head_forward(*a, **k)
        return captured["outputs"]

    head.forward = capture_head
    if args.no_semantic:
        # the decoder's class head needs some class embeddings; masks do not depend on them
        lang.default_text_embeddings = embeds
    else:
        names = [*COCO_PANOPTIC_CLASSES, "background"]
        if args.exact_class_embeddings:
            with timer("class_embeddings"):
                lang.get_text_embeddings(names, is_eval=True)
        else:
            text_check = check_trimmed_text(lang, names[: args.check_classes], timer)
            with timer("class_embeddings"), off.causal_text_trimmed(lang):
                lang.get_text_embeddings(names, is_eval=True)
        out["semantic.class_embeddings"] = off.to_numpy(lang.default_text_embeddings)
        semantic_classes = list(COCO_PANOPTIC_CLASSES)
        model.semantic_on, model.panoptic_on, model.instance_on = True, False, False
        with timer("generic_decode_and_semantic"):
            result = model.evaluate(batched)[0]["sem_seg"]
        top2 = result.topk(2, dim=0).values
        out["semantic.argmax"] = result.argmax(0).numpy().astype(np.uint8)
        out["semantic.max"] = off.to_numpy(top2[0])
        out["semantic.margin"] = off.to_numpy(top2[0] - top2[1])
        out["generic.pred_logits"] = off.to_numpy(captured["outputs"]["pred_logits"][0])
        out["generic.pred_masks"] = off.to_numpy(captured["outputs"]["pred_masks"][0])

    # ------------------------------------------------------------------ referring
    phrase = scenarios["referring"]
    grounding_inputs = [dict(batched[0], groundings={"texts": [[phrase]]})]
    with timer("referring_decode"):
        grounding = model.evaluate_grounding(grounding_inputs, "grounding_refcoco")
    ref_tokens = lang.grounding_token_embeddings["tokens"]
    gmasks = captured["outputs"]["pred_gmasks"][0]
    v_emb = captured["outputs"]["pred_gtexts"][0]
    t_emb = lang.grounding_token_embeddings["class_emb"]
    similarity = (v_emb / (v_emb.norm(dim=-1, keepdim=True) + 1e-7)) @ (
        t_emb / (t_emb.norm(dim=-1, keepdim=True) + 1e-7)
    ).t()
    matched = int(similarity[:, 0].argmax())
    out["referring.input_ids"] = ref_tokens["input_ids"].numpy()
    out["referring.attention_mask"] = ref_tokens["attention_mask"].numpy()
    out["referring.logits"] = off.to_numpy(grounding[0]["grounding_mask"][0])
    out["referring.low_res"] = off.to_numpy(gmasks[matched])
    out["referring.matched_query"] = np.array(matched)
    head.forward = head_forward

    # ------------------------------------------------------------------ interactive
    size = images.shape[-2:]
    for case in scenarios["cases"]:
        extra: dict = {}
        for rounds in (1, 2):
            pos, neg = scn.case_masks(scenarios, case, rounds, height, width)
            prefix = f"{case['name']}.round{rounds}."
            out[prefix + "pos_mask"], out[prefix + "neg_mask"] = pos, neg
            pad = [(0, 0), (0, size[0] - height), (0, size[1] - width)]
            extra.update(
                {
                    "spatial_query_pos_mask": [torch.from_numpy(np.pad(pos, pad))],
                    "spatial_query_neg_mask": [torch.from_numpy(np.pad(neg, pad))],
                }
            )
            with timer(f"decode.{case['name']}.round{rounds}"):
                outputs = predictor(multi_scale, mask_features, extra=extra, task="spatial")
            extra.update(outputs)  # round 2 gets round 1's prev_mask as memory
            prev = outputs["prev_mask"]
            logits = torch.nn.functional.interpolate(prev, size, mode="bilinear")
            out[prefix + "prev_mask"] = off.to_numpy(prev[0])
            out[prefix + "logits"] = off.to_numpy(logits[0, :, :height, :width])
            if "memory_indices" in predictor.attention_data.extra:
                out[prefix + "memory_indices"] = predictor.attention_data.extra[
                    "memory_indices"
                ].numpy()
            if f"{case['name']}/round{rounds}" in scenarios.get("layer_masks", []):
                out[prefix + "layer_masks"] = spatial_layer_masks(predictor)

    meta = {
        "config": args.config,
        "official_config": off.OFFICIAL_CONFIGS[args.config],
        "official_repo": str(Path(args.official_repo).resolve()),
        "weights": weights_info,
        "image": args.image or {"synthetic": scenarios["image"]},
        "scenarios": scenarios,
        "semantic_classes": None if args.no_semantic else semantic_classes,
        "class_embeddings_path": None
        if args.no_semantic
        else "official, untrimmed"
        if args.exact_class_embeddings
        else {"official, causal-trimmed": text_check},
        "timings_s": timer.times,
        "cpu_s": timer.cpu,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "rules": {
            "spatial_queries": "object query k -> spatial query k of each object (k < 3)",
            "prompt_pixels": "per mask: all nonzero pixels (raster) if <= 512, "
            "else pixels[floor(i * n / 512)], i < 512",
            "memory_slots": "slot i -> object (i * c) // 32",
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    out["meta"] = np.array(json.dumps(meta))
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    out = run(args)
    np.savez(args.out, **out)
    meta = json.loads(str(out["meta"]))
    print(f"{'step':36s} {'wall s':>8s} {'cpu s':>8s}")
    for name, wall in meta["timings_s"].items():
        print(f"{name:36s} {wall:8.2f} {meta['cpu_s'][name]:8.2f}")
    print(f"wrote {args.out} ({len(out)} arrays)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
