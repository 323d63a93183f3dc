"""Record the small golden file the CI test compares our official-SEEM modules against.

    python tools/official_parity/record_golden.py --official-repo /tmp/official \
        [--out test/data/official_golden_focalt.npz]

Runs the OFFICIAL code (``_official.py``: CPU, the project's deterministic rules) with random
official weights (seed 0) on a 128x128 noise image, and stores for every intermediate tensor a
fixed subset of its values (256 at fixed flat indices) with its shape, mean and std, so that
``test/test_official_golden.py`` can find the first tensor where our implementation drifts.
The inputs are rebuilt from the recipe stored in the file (no official code needed in CI):

* image: ``torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(image_seed)) *
  255`` (float RGB 0..255), normalised by the official pixel mean/std;
* texts: the 3 ``texts`` (tokens stored too), official ``forward_language(norm=True)``; they also
  serve as the class embeddings of the generic pass (``pred_logits``);
* click: pixel ``click_xy`` dilated 3x3 (round 1); round 2 adds the negative click
  ``negative_xy`` and feeds round 1's ``prev_mask`` as memory;
* phrase: the official ``evaluate_grounding`` flow (matched query and its 1/4-res mask).

Keys: ``<tensor>.index`` (int32 flat indices), ``<tensor>.values``, ``<tensor>.shape``,
``<tensor>.mean``, ``<tensor>.std``; the pipeline order is in ``meta["order"]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _official as off  # noqa: E402
import scenario as scn  # noqa: E402

DEFAULT_OUT = HERE.parents[1] / "test" / "data" / "official_golden_focalt.npz"
RECIPE = {
    "config": "seem_focalt_v1",
    "weights_seed": 0,
    "image_seed": 1234,
    "image_size": 128,
    "texts": ["a photo of a cat.", "person", "the red mug on the left"],
    "phrase": "the red mug on the left",
    "click_xy": [40, 70],
    "negative_xy": [100, 30],
    "samples": 256,
}


def golden_image(recipe: dict) -> torch.Tensor:
    size = recipe["image_size"]
    generator = torch.Generator().manual_seed(recipe["image_seed"])
    return torch.rand(1, 3, size, size, generator=generator) * 255.0


def sample_indices(numel: int, count: int, key: str) -> np.ndarray:
    """Fixed, sorted flat indices (seeded by the tensor's name)."""
    seed = int.from_bytes(key.encode(), "little") % (2**31)
    generator = torch.Generator().manual_seed(seed)
    if numel <= count:
        return np.arange(numel, dtype=np.int32)
    return np.sort(torch.randperm(numel, generator=generator)[:count].numpy()).astype(np.int32)


def record(args) -> dict[str, np.ndarray]:
    torch.set_grad_enabled(False)
    recipe = dict(RECIPE)
    state = off.random_weights(recipe["config"], recipe["weights_seed"])
    model, _ = off.build_official(args.official_repo, recipe["config"], state)
    head = model.sem_seg_head
    predictor = head.predictor
    lang = predictor.lang_encoder
    tensors: dict[str, torch.Tensor] = {}

    image = golden_image(recipe)
    size = recipe["image_size"]
    normalised = (image[0] - model.pixel_mean) / model.pixel_std
    tensors["image.normalised"] = normalised
    features = model.backbone(normalised[None])
    for name in ("res2", "res3", "res4", "res5"):
        tensors[f"backbone.{name}"] = features[name][0]
    mask_features, _, multi_scale = head.pixel_decoder.forward_features(features)
    tensors["pixel.mask_features"] = mask_features[0]
    for index, level in enumerate(multi_scale):
        tensors[f"pixel.multi_scale.{index}"] = level[0]

    tokens = lang.tokenizer(
        recipe["texts"],
        padding="max_length",
        truncation=True,
        max_length=lang.max_token_num,
        return_tensors="pt",
    )
    embeds = lang.forward_language((tokens["input_ids"], tokens["attention_mask"]), norm=True)
    tensors["text.embeddings"] = embeds
    lang.default_text_embeddings = embeds  # the generic pass's class embeddings

    generic = predictor(multi_scale, mask_features, task="seg")
    tensors["generic.pred_logits"] = generic["pred_logits"][0]
    tensors["generic.pred_masks"] = generic["pred_masks"][0]

    x, y = recipe["click_xy"]
    nx, ny = recipe["negative_xy"]
    pos = torch.from_numpy(scn.click_mask(size, size, x, y))[None]
    neg = torch.from_numpy(scn.click_mask(size, size, nx, ny))[None]
    extra = {"spatial_query_pos_mask": [pos], "spatial_query_neg_mask": [torch.zeros_like(pos)]}
    for rounds in (1, 2):
        if rounds == 2:
            extra["spatial_query_neg_mask"] = [neg]
        outputs = predictor(multi_scale, mask_features, extra=extra, task="spatial")
        data = predictor.attention_data
        start, stop = data.query_index["queries_spatial"]
        for layer, masks in enumerate(data.output["predictions_mask"]):
            tensors[f"click.round{rounds}.layer{layer}"] = masks[0, start:stop]
        tensors[f"click.round{rounds}.prev_mask"] = outputs["prev_mask"][0]
        extra.update(outputs)

    captured = {}
    head_forward = head.forward

    def capture(*a, **k):
        captured["outputs"] = head_forward(*a, **k)
        return captured["outputs"]

    head.forward = capture
    batched = [
        {
            "image": image[0],
            "height": size,
            "width": size,
            "groundings": {"texts": [[recipe["phrase"]]]},
        }
    ]
    model.evaluate_grounding(batched, "grounding_refcoco")
    head.forward = head_forward
    grounding = lang.grounding_token_embeddings
    v_emb = captured["outputs"]["pred_gtexts"][0]
    t_emb = grounding["class_emb"]
    similarity = (v_emb / (v_emb.norm(dim=-1, keepdim=True) + 1e-7)) @ (
        t_emb / (t_emb.norm(dim=-1, keepdim=True) + 1e-7)
    ).t()
    matched = int(similarity[:, 0].argmax())
    tensors["referring.token_embeddings"] = grounding["token_emb"][0][
        grounding["tokens"]["attention_mask"][0].bool()
    ]
    tensors["referring.mask"] = captured["outputs"]["pred_gmasks"][0, matched]

    out: dict[str, np.ndarray] = {}
    for name, tensor in tensors.items():
        flat = tensor.detach().float().reshape(-1)
        index = sample_indices(flat.numel(), recipe["samples"], name)
        out[f"{name}.index"] = index
        out[f"{name}.values"] = flat[torch.from_numpy(index).long()].numpy()
        out[f"{name}.shape"] = np.array(tensor.shape, dtype=np.int32)
        out[f"{name}.mean"] = np.array(float(flat.mean()), np.float64)
        out[f"{name}.std"] = np.array(float(flat.std()), np.float64)
    out["text.input_ids"] = tokens["input_ids"].numpy().astype(np.int32)
    out["referring.matched_query"] = np.array(matched, np.int32)
    recipe["order"] = list(tensors)
    recipe["official"] = (
        "UX-Decoder/Segment-Everything-Everywhere-All-At-Once v1.0, "
        + off.OFFICIAL_CONFIGS[recipe["config"]]
    )
    out["meta"] = np.array(json.dumps(recipe))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official-repo", required=True)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args(argv)
    out = record(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(
        f"wrote {args.out}: {Path(args.out).stat().st_size / 1024:.0f} KB, "
        f"{len(json.loads(str(out['meta']))['order'])} tensors"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
