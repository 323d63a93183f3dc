#!/usr/bin/env bash
# The one prepared GPU check (issue 13): on a machine with an NVIDIA GPU, from a checkout,
#
#   bash benchmarks/gpu_check.sh
#
# 1. sets up .venv as the README does, with the GPU packages from PyPI: onnxruntime-gpu (CUDA
#    and cuDNN wheels) *instead of* onnxruntime (the two cannot share a venv), TensorRT 11;
# 2. makes the models: the shipped demo model, the shipped distilled student (models/
#    seem_student_nano.safetensors, when present), and an official Focal-T with random weights of
#    the official shapes, converted (`seem-ros convert`) and exported for 640x480 frames;
# 3. runs benchmarks/gpu_check.py under TensorRT 11 (torch-CUDA, ONNX Runtime CUDA FP16 / FP32,
#    TensorRT FP16 / FP32): parity against PyTorch (mask IoU >= 0.99) and timings;
# 4. if time is left, swaps in TensorRT 10 (what JetPack 6 ships, and what onnxruntime-gpu's
#    TensorRT execution provider links) and adds the TensorRT FP16 and ONNX Runtime TensorRT EP
#    rows under it;
# 5. leaves the table in docs/performance_gpu.md (and the raw rows in $WORK/results.json).
#
# Everything is kept within GPU_CHECK_LIMIT_S (default 460 s, under 8 minutes): backends that
# would start after the budget are listed as not run. Environment:
#   GPU_CHECK_LIMIT_S=460         overall budget in seconds
#   GPU_CHECK_WORK=gpu_check_work scratch folder (models, exports, engine caches, results.json)
#   GPU_CHECK_SKIP_INSTALL=1      use .venv as it is (packages already installed)
#   GPU_CHECK_REPEATS=10          timed runs per measurement
# Exit status: 0 when every parity check passed, 1 when one failed, 2 without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT_S=${GPU_CHECK_LIMIT_S:-460}
WORK=${GPU_CHECK_WORK:-gpu_check_work}
REPEATS=${GPU_CHECK_REPEATS:-10}
PY=.venv/bin/python
PIP=".venv/bin/pip install -q --disable-pip-version-check"
log() { echo "[gpu_check ${SECONDS}s] $*"; }
left() { echo $((LIMIT_S - SECONDS)); }

if ! nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; then
    echo "gpu_check: no NVIDIA GPU here (nvidia-smi failed); nothing measured" >&2
    exit 2
fi
mkdir -p "$WORK"

if [ "${GPU_CHECK_SKIP_INSTALL:-0}" != 1 ]; then
    log "installing: the README's venv, then onnxruntime-gpu instead of onnxruntime, TensorRT 11"
    [ -x "$PY" ] || python3.11 -m venv .venv
    $PIP torch==2.14.1 torchvision==0.29.1 -e '.[torch,tensorrt]'
    .venv/bin/pip uninstall -q -y onnxruntime onnxruntime-gpu >/dev/null 2>&1 || true
    $PIP 'onnxruntime-gpu[cuda,cudnn]' 'tensorrt>=11,<12'
fi
$PY - <<'EOF'
import onnxruntime, tensorrt, torch
print("torch", torch.__version__, "CUDA", torch.version.cuda, "GPU:", torch.cuda.is_available())
print("onnxruntime", onnxruntime.__version__, onnxruntime.get_available_providers())
print("tensorrt", tensorrt.__version__)
EOF

if [ ! -f "$WORK/focalt.safetensors" ]; then
    log "Focal-T: random weights of the official shapes, converted"
    $PY -c "import torch; from seem_ros.model.official.manifest import random_official_state_dict as r; torch.save(r('seem_focalt_v1'), '$WORK/focalt_random.pt')"
    .venv/bin/seem-ros convert "$WORK/focalt_random.pt" --out "$WORK/focalt.safetensors"
fi
if [ ! -f "$WORK/focalt_onnx/manifest.json" ]; then
    log "Focal-T: exported for 640x480 frames"
    .venv/bin/seem-ros export --model "$WORK/focalt.safetensors" --out "$WORK/focalt_onnx" \
        --frame-size 640x480 --no-text-encoder
fi

# the pip wheels' TensorRT libraries, for onnxruntime's TensorRT execution provider
trt_libs() { $PY -c "import os, tensorrt_libs; print(os.path.dirname(tensorrt_libs.__file__))" 2>/dev/null || true; }
run_check() {  # run_check BUDGET_S BACKENDS
    LD_LIBRARY_PATH="$(trt_libs):${LD_LIBRARY_PATH:-}" $PY benchmarks/gpu_check.py \
        --results "$WORK/results.json" --markdown docs/performance_gpu.md --work "$WORK" \
        --focalt "$WORK/focalt.safetensors" --focalt-onnx "$WORK/focalt_onnx" \
        --repeats "$REPEATS" --budget-s "$1" --backends "$2" \
        --command "bash benchmarks/gpu_check.sh"
}

status=0
rm -f "$WORK/results.json"
log "TensorRT 11 run ($(left) s left)"
run_check $(( $(left) - 110 )) torch-cuda,tensorrt-fp16,ort-cuda-fp16,ort-cuda-fp32,tensorrt-fp32 || status=$?

if [ "$(left)" -gt 90 ] && [ "${GPU_CHECK_SKIP_INSTALL:-0}" != 1 ]; then
    log "TensorRT 10 run ($(left) s left): the 10.x build path and the TensorRT EP"
    .venv/bin/pip uninstall -q -y tensorrt tensorrt_cu13 >/dev/null 2>&1 || true
    $PIP 'tensorrt-cu13>=10.13,<11'
    run_check $(( $(left) - 10 )) tensorrt-fp16,ort-tensorrt-ep || status=$?
else
    log "no TensorRT 10 run ($(left) s left, or GPU_CHECK_SKIP_INSTALL=1)"
fi
log "done: docs/performance_gpu.md (exit $status)"
exit $status
