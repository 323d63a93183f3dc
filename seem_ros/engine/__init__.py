"""Inference backends behind one :class:`~seem_ros.engine.base.Engine` interface.

``torch_engine`` (PyTorch eager, the reference), ``onnxruntime_engine`` and ``tensorrt_engine``
run the graphs written by ``onnx_export`` (read through ``export_manifest``, without torch);
``selection.create_engine`` picks one by name or ``auto`` (``create_export_engine`` for an export
folder alone). Nothing heavy is imported here: ``from seem_ros.engine import create_engine`` loads
the selection module on first use.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "create_engine": "selection",
    "create_export_engine": "selection",
    "load_segmenter_with_backend": "selection",
    "BACKENDS": "selection",
    "Engine": "base",
    "EngineError": "base",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
