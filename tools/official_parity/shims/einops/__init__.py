"""Stand-in for einops (used by official training losses and DaViT, not by SEEM inference)."""


def rearrange(*args, **kwargs):
    raise NotImplementedError("einops is not available in the parity harness")


repeat = rearrange
