"""The teacher/student table of docs/distillation.md, measured: quality on the test split (both
models on the teacher's frames) and speed, the two models timed in alternating rounds so that
the machine's drift does not favour either.

    python tools/distill_demo/report.py --student models/seem_student_nano.safetensors \
        --json docs/distill_demo.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("interactive", "referring", "generic")
FRAMES = ("256x256", "640x480")
# the target: the student keeps this share of the teacher's numbers ...
KEPT = {"miou_1click": ("interactive", "miou_1click"), "referring_miou": ("referring", "miou")}
KEPT["pq"] = ("generic", "pq")
TARGET_SHARE, TARGET_SPEEDUP = 0.9, 3.0  # ... at this end-to-end speed-up


def quality(model: Path, split: str, scenes: int, frame_size: int) -> dict:
    from seem_ros.eval.benchmark import Benchmark, BenchmarkSize
    from seem_ros.segmenter import Segmenter

    benchmark = Benchmark(
        Segmenter.from_pretrained(model),
        split=split,
        size=BenchmarkSize(scenes=scenes),
        frame_size=frame_size,
    )
    report = benchmark.run(SECTIONS)
    return {name: report[name] for name in SECTIONS}


def bench(model: Path, frame: str, backends: str, repeats: int, cache: Path) -> dict:
    """One ``seem-ros bench`` run in its own process (each model gets a fresh interpreter)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "bench.json"
        command = [sys.executable, "-m", "seem_ros.cli", "bench", "--model", str(model)]
        command += ["--backend", backends, "--size", frame, "--prompts", "1,10", "--no-peers"]
        command += ["--repeats", str(repeats), "--cache-dir", str(cache), "--json", str(out)]
        subprocess.run(command, check=True, capture_output=True)
        return json.loads(out.read_text())


def speed(models: dict[str, Path], rounds: int, repeats: int, cache: Path) -> dict:
    """Median over ``rounds`` alternating runs of each model's timings per frame size."""
    runs: dict[str, dict[str, list[dict]]] = {name: {f: [] for f in FRAMES} for name in models}
    steps = [(r, f, n) for r in range(rounds) for f in FRAMES for n in models]
    for round_index, frame, name in tqdm(steps, desc="speed"):
        backends = "onnxruntime,torch" if round_index == 0 else "onnxruntime"
        runs[name][frame].append(bench(models[name], frame, backends, repeats, cache))
    result: dict = {"machine": runs["teacher"][FRAMES[0]][0]["machine"]}
    for name, frames in runs.items():
        for frame, measured in frames.items():
            row = {}
            for backend in ("onnxruntime", "torch"):
                samples = [m["backends"][backend] for m in measured if backend in m["backends"]]
                row[backend] = {
                    "encode_ms": round(statistics.median(s["encode_ms"] for s in samples), 2),
                    "decode_ms": {
                        k: round(statistics.median(s["decode_ms"][k] for s in samples), 2)
                        for k in ("1", "10")
                    },
                    "e2e_ms": round(statistics.median(s["e2e_ms"] for s in samples), 2),
                    "e2e_ms_per_round": [round(s["e2e_ms"], 2) for s in samples],
                }
            result[f"{name} {frame}"] = row
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--teacher", type=Path, default=ROOT / "checkpoints/tiny_stage6/seem_tiny_demo.safetensors"
    )
    parser.add_argument("--student", type=Path, required=True)
    parser.add_argument("--split", default="test", choices=("test", "val"))
    parser.add_argument("--scenes", type=int, default=50)
    parser.add_argument("--frame-size", type=int, default=256, help="the teacher's input size")
    parser.add_argument("--rounds", type=int, default=5, help="alternating speed rounds")
    parser.add_argument("--repeats", type=int, default=100, help="timed runs per measurement")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "distil")
    parser.add_argument("--json", type=Path, help="write everything here")
    args = parser.parse_args()

    models = {"teacher": args.teacher, "student": args.student}
    measured = {
        name: quality(path, args.split, args.scenes, args.frame_size)
        for name, path in models.items()
    }
    timings = speed(models, args.rounds, args.repeats, args.cache_dir)
    kept = {
        key: round(measured["student"][s][m] / measured["teacher"][s][m], 4)
        for key, (s, m) in KEPT.items()
    }
    speedup = {
        frame: round(
            timings[f"teacher {frame}"]["onnxruntime"]["e2e_ms"]
            / timings[f"student {frame}"]["onnxruntime"]["e2e_ms"],
            2,
        )
        for frame in FRAMES
    }
    report = {
        "split": args.split,
        "scenes": args.scenes,
        "frame_size": args.frame_size,
        "models": {name: str(path) for name, path in models.items()},
        "quality": measured,
        "kept": kept,
        "speedup_onnxruntime_e2e": speedup,
        "speed": timings,
        "targets_met": all(v >= TARGET_SHARE for v in kept.values())
        and speedup[FRAMES[0]] >= TARGET_SPEEDUP,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("kept", "speedup_onnxruntime_e2e", "targets_met")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
