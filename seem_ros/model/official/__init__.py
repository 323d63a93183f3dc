"""The official SEEM v1 architecture (UX-Decoder/Segment-Everything-Everywhere-All-At-Once,
branch v1.0), written here in plain PyTorch.

Module and parameter names follow the upstream checkpoints, so a converted checkpoint loads into
:class:`~seem_ros.model.official.seem_v1.OfficialSEEM` without a rename table.
"""
