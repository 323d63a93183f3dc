"""Load and drive the OFFICIAL SEEM v1 code (UX-Decoder/Segment-Everything-Everywhere-All-At-Once,
branch v1.0) on a CPU, with the official random draws replaced by the project's fixed rules.

Nothing of the official code is copied here: it is imported from the checkout the user names
(``--official-repo``), with our stand-ins for its third-party imports (``shims/``) put first on
``sys.path``. Only this harness process is touched:

* ``Tensor.cuda()`` returns the tensor itself and ``torch.cuda.current_device()`` names the CPU
  (the official inference code moves token ids and a dilation kernel to "the" GPU);
* the three random draws of SEEM v1 inference become the project's deterministic rules
  (:func:`install_deterministic_rules`).

The model is built by the official builder from the official YAML and loaded strictly.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
SHIMS = HERE / "shims"

OFFICIAL_CONFIGS = {
    "seem_focalt_v1": "configs/seem/focalt_unicl_lang_v1.yaml",
    "seem_focall_v1": "configs/seem/focall_unicl_lang_v1.yaml",
}
NON_PERSISTENT_OK = ("pixel_mean", "pixel_std")  # not in the checkpoints (manifest README)


# ------------------------------------------------------------------ the deterministic rules
def strided_pixels(mask: torch.Tensor, max_len: int) -> torch.Tensor:
    """Rule for one (H, W) prompt mask: its nonzero pixels in raster order, (n, 2) rows (y, x);
    all of them when n <= max_len, else the evenly strided subset floor(i * n / max_len)."""
    pixels = mask.nonzero()
    n = len(pixels)
    if n <= max_len:
        return pixels
    index = torch.div(torch.arange(max_len) * n, max_len, rounding_mode="floor")
    return pixels[index]


def deterministic_rand_sample(x: torch.Tensor, divisor: torch.Tensor, max_len: int) -> torch.Tensor:
    """Replaces the official ``rand_sample(x, divisor, max_len)``.

    ``x`` is one image's (c, H, W) stack of prompt masks; the result has the official layout,
    a float (3, n) tensor of rows (mask index, y / H, x / W) (``nonzero() / divisor``), masks in
    order and each mask's pixels by :func:`strided_pixels`. (The official draws ``max_len``
    pixels at random over all masks together, each mask with equal total probability.)
    """
    if len(x.nonzero()) == 0:
        return x.nonzero().t()  # as the official: an empty long (3, 0) tensor
    rows = []
    for index in range(x.shape[0]):
        pixels = strided_pixels(x[index], max_len)
        ids = torch.full((len(pixels), 1), index, dtype=pixels.dtype)
        rows.append(torch.cat([ids, pixels], dim=1))
    return (torch.cat(rows) / divisor).t()


def _variable_rand_sample(sample_size: int):
    def rand_sample(self, max_len):  # replaces Variable.rand_sample (random object queries)
        # spatial query k of each object starts from object query k
        index = torch.arange(max_len) % sample_size
        self.output = self.output[index]
        self.pos = self.pos[index]
        return self

    return rand_sample


class _TorchWithFixedMultinomial:
    """``torch`` for the attention-data module, except ``multinomial``: the only call there
    draws the memory slots' objects (uniform over c objects, 32 draws, sorted); the rule gives
    slot i to object (i * c) // 32."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def multinomial(probs, num_samples, replacement=False, **kwargs):
        count = probs.shape[-1]
        return torch.div(torch.arange(num_samples) * count, num_samples, rounding_mode="floor")


def install_deterministic_rules(sample_size: int) -> None:
    import modeling.interface.prototype.attention_data_struct_seemv1 as data_struct
    import modeling.interface.seem_v1 as seem_v1

    seem_v1.rand_sample = deterministic_rand_sample
    data_struct.Variable.rand_sample = _variable_rand_sample(sample_size)
    data_struct.torch = _TorchWithFixedMultinomial()


# ------------------------------------------------------------------ import + build
def _cpu_only_patches() -> None:
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    torch.cuda.current_device = lambda: "cpu"


def import_official(official_repo: str | Path) -> None:
    repo = Path(official_repo).resolve()
    if not (repo / "modeling" / "interface" / "seem_v1.py").is_file():
        raise SystemExit(f"{repo} does not look like the official SEEM v1.0 checkout")
    for path in (str(repo), str(SHIMS)):
        if path in sys.path:
            sys.path.remove(path)
    sys.path[:0] = [str(SHIMS), str(repo)]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _cpu_only_patches()
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    import modeling  # noqa: F401  (registers every official builder)


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    return state


def random_weights(config: str, seed: int) -> dict[str, torch.Tensor]:
    sys.path.insert(0, str(HERE.parents[1]))  # the repo root, for seem_ros
    from seem_ros.model.official.manifest import random_official_state_dict

    return random_official_state_dict(config, seed=seed)


def build_official(official_repo: str | Path, config: str, state: dict[str, torch.Tensor]):
    """The official GeneralizedSEEM, built from the official YAML, strictly loaded, eval mode."""
    import_official(official_repo)
    from modeling import build_model
    from utils.arguments import load_opt_from_config_files

    opt = load_opt_from_config_files([str(Path(official_repo) / OFFICIAL_CONFIGS[config])])
    opt["device"] = "cpu"
    torch.manual_seed(0)  # the builder's own random init is overwritten below
    model = build_model(opt)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in NON_PERSISTENT_OK]
    if missing or unexpected:
        raise SystemExit(
            f"strict load failed: missing {missing[:10]}, unexpected {unexpected[:10]}"
        )
    model.eval()
    install_deterministic_rules(opt["ATTENTION_ARCH"]["QUERY_NUMBER"])
    return model, opt


# ------------------------------------------------------------------ a faster text path
@contextmanager
def causal_text_trimmed(lang_encoder):
    """Within the block, the official text transformer (``lang_encoder.lang_encoder``) runs
    only up to the batch's last real token instead of all 77 positions.

    Exact up to float rounding: the official transformer is causal and gets no padding mask,
    so a position never sees later ones, and every read position (the end-of-text token,
    ``input_ids.argmax()``, or a token under the attention mask) lies before the cut. The
    official modules do the work (token embedding, positional embedding rows, residual
    blocks with their causal mask cut to the same length, final norm); the cut positions are
    returned as NaN so that any read of them shows. Used for the templated class embeddings
    (~10,900 sentences), checked against the untrimmed path by the caller.
    """
    transformer = lang_encoder.lang_encoder
    if not getattr(transformer, "autogressive", False):
        raise RuntimeError("the trimmed text path needs the causal (AUTOGRESSIVE) encoder")

    def forward(input_ids, attention_mask=None):
        length = int(input_ids.argmax(dim=-1).max()) + 1
        if attention_mask is not None:
            length = max(length, int(attention_mask.sum(dim=-1).max()))
        masks = [block.attn_mask for block in transformer.resblocks]
        try:
            for block, mask in zip(transformer.resblocks, masks):
                block.attn_mask = mask[:length, :length]
            x = transformer.token_embedding(input_ids[:, :length])
            x = x + transformer.positional_embedding[:length]
            x = x.permute(1, 0, 2)
            for block in transformer.resblocks:
                x = block(x, None)
            x = transformer.ln_final(x.permute(1, 0, 2))
        finally:
            for block, mask in zip(transformer.resblocks, masks):
                block.attn_mask = mask
        rest = x.new_full((x.shape[0], input_ids.shape[1] - length, x.shape[2]), float("nan"))
        return {"last_hidden_state": torch.cat([x, rest], dim=1)}

    transformer.forward = forward
    try:
        yield
    finally:
        del transformer.forward  # the class's forward again


# ------------------------------------------------------------------ small helpers
class Timer:
    """Wall-clock seconds per step, and the process's CPU seconds (all threads) per step,
    which say more than wall time on a shared machine."""

    def __init__(self):
        self.times: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        start, cpu = time.perf_counter(), time.process_time()
        yield
        self.times[name] = round(time.perf_counter() - start, 3)
        self.cpu[name] = round(time.process_time() - cpu, 3)


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()


def normalise(model, image_uint8_hwc: np.ndarray) -> torch.Tensor:
    """(1, 3, H', W'): the official (x - mean) / std and zero padding to a multiple of 32."""
    from detectron2.structures import ImageList

    image = torch.from_numpy(np.ascontiguousarray(image_uint8_hwc)).permute(2, 0, 1).float()
    image = (image - model.pixel_mean) / model.pixel_std
    return ImageList.from_tensors([image], model.size_divisibility).tensor
