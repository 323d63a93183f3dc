"""``seem-ros bench`` and its harness: JSON contract, timing, memory, FLOPs and peers."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from seem_ros.benchmark.flops import count_gflops, measure_matmul_gflops
from seem_ros.benchmark.harness import BenchSettings, bench_peers, format_table
from seem_ros.benchmark.memory import CLEAR_REFS, peak_rss_mb, reset_peak_rss
from seem_ros.benchmark.timing import measure
from seem_ros.model.build import build_model
from seem_ros.model.config import load_config
from seem_ros.prompt_encoding import PromptLayout
from seem_ros.segmenter import Segmenter

BACKEND_KEYS = {"encode_ms", "decode_ms", "e2e_ms", "fps", "peak_rss_mb", "gflops", "peak_fraction"}


@pytest.fixture(scope="module")
def bench_json(tmp_path_factory) -> dict:
    from seem_ros.cli import main

    out = tmp_path_factory.mktemp("bench") / "bench.json"
    argv = [
        "bench",
        "--backend",
        "torch,onnxruntime",
        "--size",
        "96x64",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--no-peers",
        "--json",
        str(out),
        "--cache-dir",
        str(tmp_path_factory.getbasetemp() / "bench-cache"),
    ]
    assert main(argv) == 0
    return json.loads(out.read_text())


def test_bench_json_has_the_contract_keys_for_every_backend(bench_json):
    assert bench_json["matmul_gflops"] > 0
    for name in ("torch", "onnxruntime"):
        values = bench_json["backends"][name]
        assert set(values) >= BACKEND_KEYS
        assert set(values["decode_ms"]) == {"1", "10", "50"}
        assert all(v > 0 for v in values["decode_ms"].values())
        assert values["fps"] == pytest.approx(1000.0 / values["e2e_ms"])
        assert values["peak_fraction"] > 0


def test_bench_records_why_a_backend_was_skipped(tmp_path, monkeypatch):
    from seem_ros.cli import main

    monkeypatch.setitem(sys.modules, "tensorrt", None)  # as if TensorRT were not installed
    out = tmp_path / "bench.json"
    argv = ["bench", "--backend", "tensorrt", "--repeats", "1", "--no-peers", "--json", str(out)]
    assert main(argv) == 0
    assert "not installed" in json.loads(out.read_text())["backends"]["tensorrt"]["skipped"]


def test_bench_without_peers_writes_an_empty_peer_table(bench_json):
    assert bench_json["peers"] == {}


def test_model_gflops_are_the_same_for_every_backend(bench_json):
    torch_values, ort_values = (
        bench_json["backends"]["torch"],
        bench_json["backends"]["onnxruntime"],
    )
    assert torch_values["gflops"] == ort_values["gflops"] > 0


def test_table_lists_every_backend_and_the_matmul_peak(bench_json):
    table = format_table(bench_json)
    assert "| torch |" in table and "| onnxruntime |" in table
    assert "matmul peak" in table


@pytest.mark.parametrize("size", ["640", "640x", "8x8", "axb"])
def test_bad_frame_size_is_a_usage_error(size):
    from seem_ros.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--size", size])
    assert exit_info.value.code == 2


def test_settings_reject_an_unknown_backend():
    with pytest.raises(ValueError, match="backends must be among"):
        BenchSettings(backends=("tflite",))


# ----------------------------------------------------------------------------- peers
def test_peers_are_timed_through_the_same_harness():
    peers = bench_peers(BenchSettings(peer_image_size=128, peer_repeats=1))
    assert set(peers) == {"sam_vit_b", "mobile_sam_class"}
    assert all(values["e2e_ms"] > 0 for values in peers.values())


def test_a_peer_whose_package_is_missing_is_skipped_with_the_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "segment_anything", None)
    monkeypatch.setitem(sys.modules, "segment_anything.modeling", None)
    peers = bench_peers(BenchSettings(peer_image_size=128, peer_repeats=1))
    assert all("segment-anything is not installed" in v["skipped"] for v in peers.values())


# ----------------------------------------------------------------------------- measurements
def test_timing_reports_ordered_percentiles_over_the_requested_repeats():
    calls = []
    timing = measure(lambda: calls.append(sum(range(2000))), warmup=2, repeats=7)
    assert len(calls) == 9
    assert timing.repeats == 7
    assert 0 < timing.p10_ms <= timing.median_ms <= timing.p90_ms


def test_timing_rejects_zero_repeats():
    with pytest.raises(ValueError, match="repeats >= 1"):
        measure(lambda: None, warmup=0, repeats=0)


@pytest.mark.skipif(not CLEAR_REFS.exists(), reason="needs Linux /proc/self/clear_refs")
def test_peak_rss_sees_an_allocation_and_resets_after_it():
    import mmap

    size = 96 * 1024 * 1024
    reset_peak_rss()
    before = peak_rss_mb()
    block = mmap.mmap(-1, size)  # fresh pages (malloc could reuse already-resident memory)
    block.write(b"\x01" * size)
    with_block = peak_rss_mb()
    block.close()
    assert reset_peak_rss()
    assert with_block >= before + 80
    assert peak_rss_mb() < with_block - 80


def _one_object_prompts(model) -> object:
    prompts = PromptLayout.of(model).empty(groups=1, input_hw=(model.config.image_size,) * 2)
    prompts.group_valid[:] = 1.0
    return prompts


def test_encoder_flops_grow_with_the_square_of_the_input_side():
    small = build_model("tiny")
    config = load_config("tiny")
    config.image_size = 512
    large = build_model(config)
    small_flops = count_gflops(small, _one_object_prompts(small), (256, 256))["encode"]
    large_flops = count_gflops(large, _one_object_prompts(large), (512, 512))["encode"]
    assert large_flops == pytest.approx(4 * small_flops, rel=0.01)


def test_matmul_peak_is_a_positive_rate():
    assert measure_matmul_gflops(size=256, repeats=3) > 0


def test_camera_frame_is_deterministic_and_sized_width_by_height():
    from seem_ros.benchmark.workload import camera_frame, click_tensors

    frame = camera_frame(96, 64)
    assert frame.shape == (64, 96, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, camera_frame(96, 64))
    tensors = click_tensors(Segmenter.from_config("tiny"), 3, 96, 64)
    assert tensors.group_valid.sum() == 3
