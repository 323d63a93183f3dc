"""The ``seem-ros bench`` harness: latency, memory and FLOP measurements for every backend,
and the same pipeline measured for peer models (SAM ViT-B, a MobileSAM-class model)."""
