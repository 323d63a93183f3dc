"""The torch-free runtime: run an export folder (``seem-ros export``) without PyTorch.

* :mod:`.tokenizer`: CLIP's BPE tokenizers (our models' open_clip one and the official one);
* :mod:`.numpy_ops`: the few array operations the heads need (bilinear sampling, layer norm);
* :mod:`.heads`: what the :class:`~seem_ros.segmenter.Segmenter` computes outside the encoder
  and decoder graphs (text and class embeddings, reference-region tokens, class scores), with
  the PyTorch model (:class:`~seem_ros.runtime.heads.TorchHeads`) ...
* :mod:`.exported_heads`: ... and from an export folder (text encoder graph + numpy);
* :mod:`.export_folder`: reading an export folder, and the runtime files ``seem-ros export``
  writes into it (model card, the heads' tensors, CLIP's BPE vocabulary).

``Segmenter.from_export(folder)`` puts them together with an engine from
:func:`~seem_ros.engine.selection.create_export_engine`. Nothing here imports torch, open_clip
or onnx.
"""
