"""Multi-object tracking across frames with SEEM memory prompts (see :mod:`.tracker`)."""

from .matching import mask_iou_matrix, match_by_iou
from .reference import reference_crop
from .track import Track, TrackingResult, TrackState
from .tracker import Tracker, TrackerFullError

__all__ = [
    "Track",
    "TrackState",
    "Tracker",
    "TrackerFullError",
    "TrackingResult",
    "mask_iou_matrix",
    "match_by_iou",
    "reference_crop",
]
