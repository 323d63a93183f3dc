"""The ``seem-ros bench`` harness: latency, memory and FLOP measurements for every backend,
and the same pipeline measured for peer models (SAM ViT-B, a MobileSAM-class model)."""

ALL_BACKENDS = ("torch", "onnxruntime", "tensorrt")
"""The backends ``seem-ros bench`` measures, in table order."""
