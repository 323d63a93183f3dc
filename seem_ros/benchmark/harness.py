"""``seem-ros bench``: time every backend and the peers on one machine, in one run.

Per backend (JSON ``backends.<name>``; the keys are a contract):

* ``encode_ms``: ``Engine.encode`` of one frame (median; spreads in ``encode_spread_ms``);
* ``decode_ms``: ``Engine.decode`` for N clicked objects, keyed by N ("1", "10", "50");
* ``e2e_ms`` / ``fps``: ``Segmenter.segment`` of a camera frame with one object given by a
  referring phrase and a click (resize, encode, text, clicks, decode, post-processing; the
  phrase's embedding is cached after warm-up, as in the node);
* ``peak_rss_mb``: peak resident memory while this backend was created and measured;
* ``gflops``: counted model GFLOPs of one encode + one single-object decode;
* ``peak_fraction``: encoder GFLOP/s achieved (``encode_gflop_per_s``) / ``matmul_gflops``,
  the best matmul rate seen in the same run (measured before the first and after every
  backend: on a shared host a single early measurement can land in a slow moment, and a
  fraction above 1 would say more about the measurement than about the encoder).

Peers (``peers.<name>.e2e_ms``) run their own one-click pipeline; ``e2e_ratio`` gives our
``e2e_ms`` divided by the peer's, per backend (< 1 means we are faster).
"""

from __future__ import annotations

import logging
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..engine.base import EngineError
from ..engine.onnxruntime_engine import physical_cores
from ..engine.selection import create_engine
from ..model_zoo import load_segmenter
from ..prompts import ObjectPrompt, Points
from ..segmenter import Segmenter
from . import ALL_BACKENDS
from .flops import count_gflops, measure_matmul_gflops
from .memory import peak_rss_mb, reset_peak_rss
from .peers import PEERS, PeerUnavailable, peer_call
from .timing import measure
from .workload import camera_frame, click_tensors

LOG = logging.getLogger(__name__)
E2E_PHRASE = "the red mug on the left"


@dataclass
class BenchSettings:
    backends: tuple[str, ...] = ALL_BACKENDS
    frame_size: tuple[int, int] = (640, 480)  # camera frame, width x height
    prompt_counts: tuple[int, ...] = (1, 10, 50)
    repeats: int = 30
    warmup: int = 3
    peers: bool = True
    peer_image_size: int = 1024  # SAM's input side
    peer_repeats: int = 3
    model_path: Path | None = None
    cache_dir: Path | None = None
    matmul_size: int = 1024

    def __post_init__(self) -> None:
        unknown = set(self.backends) - set(ALL_BACKENDS)
        if unknown or not self.backends:
            raise ValueError(f"backends must be among {ALL_BACKENDS}, got {self.backends}")
        if min(self.frame_size) < 16:
            raise ValueError(f"frame size {self.frame_size} is too small (need >= 16 x 16)")
        if not self.prompt_counts or min(self.prompt_counts) < 1:
            raise ValueError(f"prompt counts must be positive, got {self.prompt_counts}")
        if self.repeats < 1 or self.peer_repeats < 1:
            raise ValueError("repeats must be at least 1")


@dataclass
class BackendResult:
    description: str
    encode_ms: float
    encode_spread_ms: list[float]
    decode_ms: dict[str, float]
    decode_spread_ms: dict[str, list[float]]
    e2e_ms: float
    e2e_spread_ms: list[float]
    fps: float
    peak_rss_mb: float
    gflops: float
    encode_gflop_per_s: float
    peak_fraction: float
    extra_prompt_ms: float
    extra_prompt_fraction_of_encode: float
    e2e_ratio: dict[str, float] = field(default_factory=dict)


def machine_description() -> dict[str, Any]:
    import onnxruntime

    return {
        "cpu": _cpu_name(),
        "physical_cores": physical_cores(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def bench_backend(
    name: str,
    reference: Segmenter,
    settings: BenchSettings,
    *,
    model_gflops: dict[str, float],
    matmul_gflops: float,
) -> BackendResult:
    """Measure one backend (raises :class:`EngineError` when it cannot run here)."""
    width, height = settings.frame_size
    reset_peak_rss()
    engine = create_engine(
        name,
        reference.model,
        reference.card,
        cache_dir=settings.cache_dir,
        group_counts=tuple(sorted(set(settings.prompt_counts))),
        input_hw=reference.transform_for(height, width).input_hw,  # graphs for the camera
    )
    segmenter = Segmenter(reference.model, reference.card, engine=engine)
    frame = camera_frame(width, height)
    encoded = segmenter.encode_image(frame)
    model_input = encoded.transform.image_to_input(frame)[None]
    timing = {"warmup": settings.warmup, "repeats": settings.repeats}
    encode = measure(lambda: engine.encode(model_input), **timing)
    decode = {}
    for count in settings.prompt_counts:
        tensors = click_tensors(segmenter, count, width, height)
        decode[str(count)] = measure(lambda t=tensors: engine.decode(encoded.features, t), **timing)
    prompt = ObjectPrompt(text=E2E_PHRASE, points=Points.single(width * 0.4, height * 0.6))
    e2e = measure(lambda: segmenter.segment(frame, prompt), **timing)
    fewest, most = min(settings.prompt_counts), max(settings.prompt_counts)
    extra = 0.0
    if most > fewest:
        extra = (decode[str(most)].median_ms - decode[str(fewest)].median_ms) / (most - fewest)
    achieved = model_gflops["encode"] / (encode.median_ms / 1000.0)
    return BackendResult(
        description=engine.describe(),
        encode_ms=encode.median_ms,
        encode_spread_ms=[encode.p10_ms, encode.p90_ms],
        decode_ms={k: v.median_ms for k, v in decode.items()},
        decode_spread_ms={k: [v.p10_ms, v.p90_ms] for k, v in decode.items()},
        e2e_ms=e2e.median_ms,
        e2e_spread_ms=[e2e.p10_ms, e2e.p90_ms],
        fps=1000.0 / e2e.median_ms,
        peak_rss_mb=peak_rss_mb(),
        gflops=model_gflops["encode"] + model_gflops["decode"],
        encode_gflop_per_s=achieved,
        peak_fraction=achieved / matmul_gflops,
        extra_prompt_ms=extra,
        extra_prompt_fraction_of_encode=extra / encode.median_ms,
    )


def bench_peers(settings: BenchSettings) -> dict[str, dict[str, Any]]:
    """``{peer: {"e2e_ms", "e2e_spread_ms", "image_size"}}`` or ``{peer: {"skipped": why}}``."""
    results: dict[str, dict[str, Any]] = {}
    for peer in PEERS:
        try:
            model = peer.build(settings.peer_image_size)
        except PeerUnavailable as error:
            LOG.warning("peer %s skipped: %s", peer.name, error)
            results[peer.name] = {"skipped": str(error)}
            continue
        call = peer_call(model, settings.peer_image_size)
        timing = measure(call, warmup=1, repeats=settings.peer_repeats)
        results[peer.name] = {
            "e2e_ms": timing.median_ms,
            "e2e_spread_ms": [timing.p10_ms, timing.p90_ms],
            "image_size": settings.peer_image_size,
        }
    return results


def run_benchmark(settings: BenchSettings) -> dict[str, Any]:
    """Run everything ``settings`` asks for; returns the JSON-ready result."""
    width, height = settings.frame_size
    reference = load_segmenter(settings.model_path, allow_untrained=settings.model_path is None)
    matmul = measure_matmul_gflops(size=settings.matmul_size)
    gflops = count_gflops(
        reference.model,
        click_tensors(reference, 1, width, height),
        reference.transform_for(height, width).input_hw,
    )
    backends: dict[str, Any] = {}
    for name in settings.backends:
        try:
            result = bench_backend(
                name, reference, settings, model_gflops=gflops, matmul_gflops=matmul
            )
        except EngineError as error:
            LOG.warning("backend %s skipped: %s", name, error)
            backends[name] = {"skipped": str(error)}
            continue
        backends[name] = asdict(result)
        matmul = max(matmul, measure_matmul_gflops(size=settings.matmul_size))
    for values in backends.values():
        if "encode_gflop_per_s" in values:
            values["peak_fraction"] = values["encode_gflop_per_s"] / matmul
    peers = bench_peers(settings) if settings.peers else {}
    for values in backends.values():
        if "e2e_ms" in values:
            values["e2e_ratio"] = {
                peer: values["e2e_ms"] / peer_values["e2e_ms"]
                for peer, peer_values in peers.items()
                if "e2e_ms" in peer_values
            }
    return {
        "machine": machine_description(),
        "model": {
            "config": reference.model.config.name,
            "trained": reference.card.trained,
            "image_size": reference.image_size,
            "encode_gflops": gflops["encode"],
            "decode_gflops_one_object": gflops["decode"],
        },
        "settings": {
            "frame_size": list(settings.frame_size),
            "prompt_counts": list(settings.prompt_counts),
            "repeats": settings.repeats,
            "warmup": settings.warmup,
            "peer_image_size": settings.peer_image_size,
        },
        "matmul_gflops": matmul,
        "backends": backends,
        "peers": peers,
    }


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of a :func:`run_benchmark` result."""
    counts = [str(c) for c in result["settings"]["prompt_counts"]]
    header = [
        "backend",
        "encode ms",
        *(f"decode {c} ms" for c in counts),
        "e2e ms",
        "fps",
        "peak RSS MB",
        "GFLOPs",
        "% matmul peak",
    ]
    rows = [header]
    for name, values in result["backends"].items():
        if "skipped" in values:
            rows.append([name, f"skipped: {values['skipped']}"])
            continue
        rows.append(
            [
                name,
                f"{values['encode_ms']:.2f}",
                *(f"{values['decode_ms'][c]:.2f}" for c in counts),
                f"{values['e2e_ms']:.2f}",
                f"{values['fps']:.1f}",
                f"{values['peak_rss_mb']:.0f}",
                f"{values['gflops']:.3f}",
                f"{100 * values['peak_fraction']:.1f}",
            ]
        )
    for name, values in result["peers"].items():
        rows.append([f"peer {name}", values.get("skipped") or f"e2e {values['e2e_ms']:.1f} ms"])
    lines = [f"| {' | '.join(row)} |" for row in rows]
    lines.insert(1, "|" + "---|" * len(header))
    lines.append(f"matmul peak: {result['matmul_gflops']:.1f} GFLOP/s (FP32)")
    return "\n".join(lines)
