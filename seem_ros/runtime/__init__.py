"""The torch-free runtime: run an export folder (``seem-ros export``) without PyTorch.

* :mod:`.tokenizer`: CLIP's BPE tokenizers (our models' open_clip one and the official one);
* :mod:`.numpy_ops`: the few array operations the heads need (bilinear sampling, layer norm);
* :mod:`.heads`: what the :class:`~seem_ros.segmenter.Segmenter` computes outside the encoder
  and decoder graphs (text and class embeddings, reference-region tokens, class scores), once
  with the PyTorch model (:class:`~seem_ros.runtime.heads.TorchHeads`) and once from an export
  (:class:`~seem_ros.runtime.exported_heads.ExportedHeads`);
* :mod:`.export_backend`: ``backend: auto|tensorrt|onnxruntime`` for an export folder.

``Segmenter.from_export(folder)`` puts them together. Nothing here imports torch, open_clip or
onnx at module level.
"""
