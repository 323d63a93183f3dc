"""The GPU check: every GPU backend against PyTorch (mask IoU) and timed, as a markdown table.

``benchmarks/gpu_check.sh`` installs the GPU packages, prepares the models and calls this once
per TensorRT version; run it alone with ``--cpu-only`` to try it on a machine without a GPU
(PyTorch and ONNX Runtime on the CPU; the GPU backends are listed as skipped).

Per model (the shipped demo model; a converted official Focal-T with random weights of the
official shapes) and backend (``torch-cuda``, ``ort-cuda-fp32``, ``ort-cuda-fp16``,
``ort-tensorrt-ep``, ``tensorrt-fp16``, ``tensorrt-fp32``):

* setup: create the engine and warm it up (TensorRT: build or load every engine);
* parity: the backend's own encode + decode of 1 and 10 clicked objects against PyTorch FP32
  on the same inputs; the smallest IoU of the objects' masks (logit > 0); FP16 passes at 0.99;
* timings (median): encode, decode of 1 / 10 / 50 clicked objects, end to end
  (``Segmenter.segment`` of a 640x480 frame with one click), and node throughput: frames per
  second of the node core (tracking on, overlay off) holding 10 tracks made from 10 boxes.

Results go to a JSON file (rows are replaced by model, backend and TensorRT version, so runs
under different TensorRT versions add up) and the markdown table is written from all of it.
A time budget is kept: a backend that would start after it is listed as not run.

python benchmarks/gpu_check.py --results RESULTS.json --markdown docs/performance_gpu.md
    [--focalt MODEL.safetensors --focalt-onnx DIR] [--backends a,b] [--budget-s 400]
    [--repeats 10] [--cpu-only] [--work DIR]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import json
import logging
import platform
import subprocess
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import REPO_ROOT  # also puts seem_ros on sys.path

from seem_ros.benchmark.timing import measure
from seem_ros.benchmark.workload import camera_frame, click_tensors
from seem_ros.engine.base import Engine
from seem_ros.engine.onnx_export import ExportManifest
from seem_ros.engine.selection import EngineRequest, ensure_export
from seem_ros.engine.torch_engine import TorchEngine
from seem_ros.model_zoo import load_segmenter
from seem_ros.prompts import ObjectPrompt, Points
from seem_ros.segmenter import Segmenter

LOG = logging.getLogger("gpu_check")
DEMO_MODEL = "models/seem_tiny_demo.safetensors"
FRAME_WH = (640, 480)
GROUPS = (1, 10, 50)
PARITY_GROUPS = (1, 10)
MIN_IOU = 0.99
NODE_TRACKS = 10
NODE_FRAMES = 20
GPU_BACKENDS = (
    "torch-cuda",
    "tensorrt-fp16",
    "ort-cuda-fp16",
    "ort-cuda-fp32",
    "ort-tensorrt-ep",
    "tensorrt-fp32",
)
CPU_BACKENDS = ("torch-cpu", "ort-cpu-fp32", "ort-cpu-fp16")
MIN_SECONDS_TO_START = 25.0


# ----------------------------------------------------------------------------- models
@dataclasses.dataclass
class ModelUnderTest:
    name: str
    cpu: Segmenter  # PyTorch on the CPU: exports, text, the ONNX Runtime / TensorRT segmenters
    manifest: ExportManifest
    device: str  # where the PyTorch reference runs
    reference: Engine
    tensors: dict[int, Any]
    frame: np.ndarray
    model_input: np.ndarray

    @property
    def card(self) -> Any:
        return self.cpu.card


def prepare_model(
    name: str, weights: Path, export: Path | None, work: Path, device: str
) -> ModelUnderTest:
    """Load ``weights`` on the CPU, reuse or make its export, and a PyTorch reference."""
    cpu = load_segmenter(weights)
    width, height = FRAME_WH
    input_hw = cpu.transform_for(height, width).input_hw  # graphs for the camera's frames
    if export is not None:
        manifest = ExportManifest.load(export)
    else:
        manifest = ensure_export(
            EngineRequest(
                model=cpu.model,
                card=cpu.card,
                precision="fp32",
                cache_dir=work / "cache",
                export_dir=work / f"{name}_onnx",
                group_counts=GROUPS,
                threads=None,
                device="cpu",
                input_hw=input_hw,
            )
        )
    exported_hw = tuple(manifest.image_shape[2:])
    if exported_hw != tuple(input_hw):
        raise SystemExit(f"{manifest.folder} was exported for {exported_hw}, need {input_hw}")
    reference_model = copy.deepcopy(cpu.model).to(device).eval()
    reference = TorchEngine(reference_model, device=device)
    frame = camera_frame(width, height)
    encoded = cpu.encode_image(frame)
    tensors = {n: click_tensors(cpu, n, width, height) for n in GROUPS}
    model_input = encoded.transform.image_to_input(frame)[None].astype(np.float32)
    return ModelUnderTest(name, cpu, manifest, device, reference, tensors, frame, model_input)


# ----------------------------------------------------------------------------- backends
def create_backend(kind: str, model: ModelUnderTest, work: Path) -> tuple[Engine, Segmenter]:
    """The engine for ``kind`` and a segmenter running it (raises when it cannot run)."""
    from seem_ros.engine.onnxruntime_engine import (
        CPU_EP,
        CUDA_EP,
        TENSORRT_EP,
        OnnxRuntimeEngine,
    )

    cache = work / "engines" / model.name / kind
    if kind in ("torch-cuda", "torch-cpu"):
        device = "cuda" if kind == "torch-cuda" else "cpu"
        gpu_model = copy.deepcopy(model.cpu.model)
        segmenter = Segmenter(gpu_model, model.card, device=device)
        return segmenter.engine, segmenter
    engine: Engine
    if kind.startswith("ort-"):
        precision = kind.rsplit("-", 1)[-1] if kind != "ort-tensorrt-ep" else "fp16"
        providers = {
            "ort-cuda-fp32": [CUDA_EP, CPU_EP],
            "ort-cuda-fp16": [CUDA_EP, CPU_EP],
            "ort-tensorrt-ep": [TENSORRT_EP, CUDA_EP, CPU_EP],
            "ort-cpu-fp32": [CPU_EP],
            "ort-cpu-fp16": [CPU_EP],
        }[kind]
        if kind == "ort-tensorrt-ep":
            import tensorrt  # noqa: F401  (loads libnvinfer from the pip wheel for the EP)
        engine = OnnxRuntimeEngine(
            model.manifest, precision=precision, providers=providers, cache_dir=cache
        )
        if kind == "ort-tensorrt-ep" and engine.active_providers[0] != TENSORRT_EP:
            raise RuntimeError(
                f"the TensorRT execution provider did not load (running on "
                f"{engine.active_providers[0]}); onnxruntime-gpu links TensorRT 10"
            )
    elif kind.startswith("tensorrt-"):
        from seem_ros.engine.tensorrt_engine import BuildOptions, TensorRTEngine

        engine = TensorRTEngine(
            model.manifest,
            cache_dir=cache,
            options=BuildOptions(precision=kind.split("-", 1)[1], workspace_mb=8192),
        )
    else:
        raise ValueError(f"unknown backend {kind!r}")
    engine.warm_up()  # type: ignore[attr-defined]
    return engine, Segmenter(model.cpu.model, model.card, engine=engine)


def mask_ious(reference: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> list[float]:
    """IoU of each object's mask (``group_masks`` logit > 0) between two decodes."""
    ious = []
    for want, got in zip(reference["group_masks"][0] > 0, other["group_masks"][0] > 0):
        union = np.logical_or(want, got).sum()
        ious.append(1.0 if union == 0 else float(np.logical_and(want, got).sum() / union))
    return ious


def node_throughput(segmenter: Segmenter, frame: np.ndarray, frames: int) -> tuple[float, int]:
    """Frames per second of the node core after ``NODE_TRACKS`` boxes became tracks, and the
    objects it then holds (those tracks and any it started itself)."""
    from seem_ros.ros import messages
    from seem_ros.ros.image_codec import rgb_to_image_msg
    from seem_ros.ros.node_core import NodeCore
    from seem_ros.ros.params import NodeParams

    params = NodeParams(tracking=True, score_threshold=0.0, publish_overlay=False)
    core = NodeCore(segmenter, params, lambda *_: None, threaded=False)
    height, width = frame.shape[:2]

    def image(count: int) -> bytes:
        header = messages.make_header(1_000_000_000 + count * 33_000_000, "camera")
        return messages.serialize(rgb_to_image_msg(frame, header))

    core.feed("image", image(0))
    rng = np.random.default_rng(7)
    boxes = []
    for index in range(NODE_TRACKS):
        x0, y0 = rng.uniform(0, width * 0.8), rng.uniform(0, height * 0.8)
        boxes.append(
            (f"object {index}", 1.0, (x0, y0, x0 + width * 0.15, y0 + height * 0.15), None)
        )
    header = messages.make_header(1_000_000_000, "camera")
    core.feed("prompt/boxes", messages.serialize(messages.make_detection_array(header, boxes)))
    for count in range(1, 4):  # warm-up, and the boxes become tracks
        core.feed("image", image(count))
    started = time.perf_counter()
    for count in range(4, 4 + frames):
        core.feed("image", image(count))
    seconds = time.perf_counter() - started
    tracks = core.session.object_count
    core.close()
    return frames / seconds, tracks


def run_backend(
    kind: str, model: ModelUnderTest, work: Path, repeats: int, seconds_left: Callable[[], float]
) -> dict[str, Any]:
    row: dict[str, Any] = {"model": model.name, "backend": kind, "tensorrt_version": ""}
    if kind.startswith("tensorrt-") or kind == "ort-tensorrt-ep":
        try:
            import tensorrt

            row["tensorrt_version"] = str(tensorrt.__version__)
        except ImportError as error:
            row["skipped"] = f"tensorrt does not import: {error}"
            return row
    started = time.perf_counter()
    engine, segmenter = create_backend(kind, model, work)
    row["setup_s"] = round(time.perf_counter() - started, 1)
    row["description"] = engine.describe()
    row["precision"] = engine.precision
    if hasattr(engine, "built_summaries"):
        row["built"] = engine.built_summaries()
    if hasattr(engine, "active_providers"):
        row["providers"] = engine.active_providers
    # parity against PyTorch FP32 on the same inputs
    features = engine.encode(model.model_input)
    reference_features = model.reference.encode(model.model_input)
    ious: list[float] = []
    for groups in PARITY_GROUPS:
        want = model.reference.decode(reference_features, model.tensors[groups])
        got = engine.decode(features, model.tensors[groups])
        ious += mask_ious(want, got)
    row["mask_iou_min"] = round(min(ious), 4)
    row["mask_iou_mean"] = round(float(np.mean(ious)), 4)
    row["parity"] = "pass" if min(ious) >= MIN_IOU else "FAIL"
    # timings: fewer repeats when time runs short
    n = repeats if seconds_left() > 120 else max(2, repeats // 4)
    timing = {"warmup": 2, "repeats": n}
    row["repeats"] = n
    row["encode_ms"] = measure(lambda: engine.encode(model.model_input), **timing).median_ms
    row["decode_ms"] = {
        str(g): measure(lambda t=model.tensors[g]: engine.decode(features, t), **timing).median_ms
        for g in GROUPS
    }
    width, height = FRAME_WH
    click = ObjectPrompt(points=Points.single(width * 0.4, height * 0.6))
    row["e2e_ms"] = measure(lambda: segmenter.segment(model.frame, click), **timing).median_ms
    if seconds_left() > 30:
        fps, tracks = node_throughput(segmenter, model.frame, NODE_FRAMES if n == repeats else 5)
        row["node_fps"], row["node_tracks"] = round(fps, 2), tracks
    else:
        row["node_fps"] = None
    return row


# ----------------------------------------------------------------------------- report
def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version()}
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability()
            info["gpu"] = f"{torch.cuda.get_device_name()} (sm_{major}{minor})"
            info["torch_cuda"] = torch.version.cuda
    except ImportError:
        pass
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        info["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
    except (OSError, subprocess.SubprocessError) as error:
        info["nvidia_smi"] = f"not available ({error})"
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
        info["ort_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        info["onnxruntime"] = "not installed"
    return info


def _ms(value: Any) -> str:
    return "" if value is None else f"{value:.2f}"


def write_markdown(results: dict[str, Any], target: Path) -> None:
    info = results["machine"]
    lines = [
        "# GPU numbers (`benchmarks/gpu_check.sh`)",
        "",
        f"Measured {results['measured']} UTC by `{results['command']}` "
        f"(written by `benchmarks/gpu_check.py`; rows of several TensorRT versions add up).",
        "",
        f"Machine: {info.get('gpu', 'no CUDA GPU visible to PyTorch')}; nvidia-smi: "
        f"{info.get('nvidia_smi', '?')}; {info['platform']}, Python {info['python']}, torch "
        f"{info.get('torch', '?')} (CUDA {info.get('torch_cuda', 'none')}), onnxruntime "
        f"{info.get('onnxruntime', '?')} (providers: {', '.join(info.get('ort_providers', []))}).",
        "",
        f"Frame {FRAME_WH[0]}x{FRAME_WH[1]}; medians of the repeats shown; parity: the smallest "
        f"mask IoU (logit > 0) of 1 + 10 clicked objects against PyTorch FP32 on the same inputs "
        f"(pass at >= {MIN_IOU}); node: frames per second of the node core with tracking on, "
        f"overlay off, after {NODE_TRACKS} boxes became tracks (objects: what the node then "
        f"decodes per frame, those tracks and any it started itself).",
    ]
    for model in results["models"]:
        rows = [r for r in results["rows"] if r["model"] == model]
        lines += [
            "",
            f"## {model}",
            "",
            "| backend | runs as | setup s | encode ms | decode 1 / 10 / 50 ms | e2e ms | "
            "node fps (objects) | mask IoU min / mean (parity) | repeats |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        notes = []
        for row in rows:
            label = row["backend"] + (
                f" (TensorRT {row['tensorrt_version']})" if row.get("tensorrt_version") else ""
            )
            if "skipped" in row or "error" in row:
                why = row.get("skipped") or f"failed: {row['error']}"
                lines.append(f"| {label} | {why} | | | | | | | |")
                continue
            decode = " / ".join(_ms(row["decode_ms"].get(str(g))) for g in GROUPS)
            node = (
                "not run (time)"
                if row.get("node_fps") is None
                else f"{row['node_fps']:.1f} ({row['node_tracks']})"
            )
            lines.append(
                f"| {label} | {row['description']} | {row['setup_s']} | {_ms(row['encode_ms'])} "
                f"| {decode} | {_ms(row['e2e_ms'])} | {node} | {row['mask_iou_min']:.4f} / "
                f"{row['mask_iou_mean']:.4f} ({row['parity']}) | {row['repeats']} |"
            )
            for built in row.get("built", []):
                notes.append(f"{label}: {built}")
        fp16 = next((r for r in rows if r["backend"] == "tensorrt-fp16" and "e2e_ms" in r), None)
        fp32 = next((r for r in rows if r["backend"] == "ort-cuda-fp32" and "e2e_ms" in r), None)
        if fp16 and fp32:
            ratio = fp32["e2e_ms"] / fp16["e2e_ms"]
            verdict = "met" if ratio >= 2 else "not met"
            lines += ["", f"TensorRT FP16 vs ONNX Runtime CUDA FP32, end to end: {ratio:.2f}x "]
            lines[-1] += f"(target >= 2x: {verdict})."
        if notes:
            lines += ["", "TensorRT engines as read back with the engine inspector:", ""]
            lines += [f"* {note}" for note in notes]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, required=True, help="JSON results (merged)")
    parser.add_argument("--markdown", type=Path, required=True, help="markdown table to write")
    parser.add_argument(
        "--demo", type=Path, default=REPO_ROOT / "models/seem_tiny_demo.safetensors"
    )
    parser.add_argument(
        "--student",
        type=Path,
        default=REPO_ROOT / "models/seem_student_nano.safetensors",
        help="the distilled student (skipped when the file is absent)",
    )
    parser.add_argument("--focalt", type=Path, help="converted official Focal-T weights")
    parser.add_argument(
        "--focalt-onnx", type=Path, help="its `seem-ros export --frame-size` folder"
    )
    parser.add_argument("--backends", help="comma-separated subset (default: all of the mode)")
    parser.add_argument("--budget-s", type=float, default=400.0, help="stop starting backends")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per measurement")
    parser.add_argument("--work", type=Path, default=Path("gpu_check_work"), help="scratch")
    parser.add_argument("--cpu-only", action="store_true", help="no GPU: CPU backends only")
    parser.add_argument("--command", default="benchmarks/gpu_check.sh", help="for the report")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    deadline = time.monotonic() + args.budget_s

    def seconds_left() -> float:
        return deadline - time.monotonic()

    backends = CPU_BACKENDS if args.cpu_only else GPU_BACKENDS
    if args.backends:
        backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    device = "cpu" if args.cpu_only else "cuda"
    try:
        import onnxruntime

        if hasattr(onnxruntime, "preload_dlls") and not args.cpu_only:
            onnxruntime.preload_dlls()  # the CUDA / cuDNN libraries of the pip wheels
    except ImportError:
        pass
    results: dict[str, Any] = {"rows": [], "models": []}
    if args.results.is_file():
        results = json.loads(args.results.read_text())
    results["machine"] = machine()
    results["measured"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")
    results["command"] = args.command
    models = [("demo (seem_tiny_demo)", args.demo, None)]
    if args.student.is_file():
        models.append(("distilled student (seem_student_nano)", args.student, None))
    if args.focalt is not None:
        models.append(("official Focal-T (random weights)", args.focalt, args.focalt_onnx))
    for name, weights, export in models:
        if name not in results["models"]:
            results["models"].append(name)
        LOG.info("preparing %s", name)
        try:
            model: ModelUnderTest | None = prepare_model(name, weights, export, args.work, device)
            unprepared = ""
        except Exception as error:  # every backend of this model becomes a row saying why
            LOG.error("%s could not be prepared:\n%s", name, traceback.format_exc())
            model, unprepared = None, f"{type(error).__name__}: {str(error).splitlines()[0]}"
        for kind in backends:
            if model is None:
                row = {"model": name, "backend": kind, "tensorrt_version": ""}
                row["error"] = f"model not prepared: {unprepared[:300]}"
            elif seconds_left() < MIN_SECONDS_TO_START:
                row = {"model": name, "backend": kind, "tensorrt_version": ""}
                row["skipped"] = f"not run: the {args.budget_s:.0f} s budget was spent"
            else:
                LOG.info("%s: %s (%.0f s left)", name, kind, seconds_left())
                try:
                    row = run_backend(kind, model, args.work, args.repeats, seconds_left)
                except Exception as error:  # a failing backend is a row, not the end
                    LOG.error("%s on %s failed:\n%s", kind, name, traceback.format_exc())
                    row = {"model": name, "backend": kind, "tensorrt_version": ""}
                    row["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
            key = (row["model"], row["backend"], row.get("tensorrt_version", ""))
            results["rows"] = [
                r
                for r in results["rows"]
                if (r["model"], r["backend"], r.get("tensorrt_version", "")) != key
            ] + [row]
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text(json.dumps(results, indent=2) + "\n")
            write_markdown(results, args.markdown)
    failed = [r for r in results["rows"] if r.get("parity") == "FAIL"]
    print(args.markdown.read_text())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
