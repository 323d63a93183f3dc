"""seem_ros: SEEM segmentation for ROS 2 robots — every prompt, every task, one model."""

__version__ = "0.1.0"

__all__ = ["Segmenter", "__version__"]


def __getattr__(name: str):  # keep ``import seem_ros`` light (no torch) until needed
    if name == "Segmenter":
        from .segmenter import Segmenter

        return Segmenter
    raise AttributeError(name)
