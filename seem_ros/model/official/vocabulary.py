"""The official SEEM v1 vocabulary: COCO panoptic class names and the CLIP prompt templates.

Data as the official code lists it (``utils/constants.py`` ``COCO_PANOPTIC_CLASSES`` and
``utils/prompt_engineering.py`` ``get_prompt_templates``, branch v1.0), in the official order: the
order is the meaning of a class index, and the template set and order decide the class embeddings.

COCO panoptic has 80 "thing" classes (countable objects, instance-segmented) followed by 53
"stuff" classes (amorphous regions). The official demo classifies against
``COCO_PANOPTIC_CLASSES + ["background"]``, every name templated alike; see
:func:`coco_panoptic_vocabulary`.
"""

from __future__ import annotations

NUM_COCO_THINGS = 80
NUM_COCO_STUFF = 53
BACKGROUND = "background"
"""The extra entry the official demo appends after the 133 COCO panoptic classes."""

COCO_PANOPTIC_CLASSES: tuple[str, ...] = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
    "banner",
    "blanket",
    "bridge",
    "cardboard",
    "counter",
    "curtain",
    "door-stuff",
    "floor-wood",
    "flower",
    "fruit",
    "gravel",
    "house",
    "light",
    "mirror-stuff",
    "net",
    "pillow",
    "platform",
    "playingfield",
    "railroad",
    "river",
    "road",
    "roof",
    "sand",
    "sea",
    "shelf",
    "snow",
    "stairs",
    "tent",
    "towel",
    "wall-brick",
    "wall-stone",
    "wall-tile",
    "wall-wood",
    "water-other",
    "window-blind",
    "window-other",
    "tree-merged",
    "fence-merged",
    "ceiling-merged",
    "sky-other-merged",
    "cabinet-merged",
    "table-merged",
    "floor-other-merged",
    "pavement-merged",
    "mountain-merged",
    "grass-merged",
    "dirt-merged",
    "paper-merged",
    "food-other-merged",
    "building-other-merged",
    "rock-merged",
    "wall-other-merged",
    "rug-merged",
)

COCO_THING_CLASSES: tuple[str, ...] = COCO_PANOPTIC_CLASSES[:NUM_COCO_THINGS]
COCO_STUFF_CLASSES: tuple[str, ...] = COCO_PANOPTIC_CLASSES[NUM_COCO_THINGS:]

PROMPT_TEMPLATES: tuple[str, ...] = (
    "{}.",
    "a photo of a {}.",
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a plushie {}.",
    "a photo of the nice {}.",
    "a photo of the small {}.",
    "a photo of the weird {}.",
    "the cartoon {}.",
    "art of the {}.",
    "a drawing of the {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "the plushie {}.",
    "a dark photo of a {}.",
    "itap of a {}.",
    "graffiti of the {}.",
    "a toy {}.",
    "itap of my {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "a tattoo of the {}.",
)
"""The official evaluation templates (81); a class embedding is the renormalised mean over them."""

_NAME_SUFFIXES = ("-other", "-merged", "-stuff")


def prompt_name(class_name: str) -> str:
    """The name the templates are filled with: COCO's "-other", "-merged" and "-stuff" removed.

    Removed wherever they occur and in this order, as the official code does, so
    "sky-other-merged" -> "sky" and "door-stuff" -> "door" ("wall-brick" stays as it is).
    """
    for suffix in _NAME_SUFFIXES:
        class_name = class_name.replace(suffix, "")
    return class_name


def prompt_sentences(class_name: str) -> list[str]:
    """Every template filled with the class's :func:`prompt_name`, in template order."""
    name = prompt_name(class_name)
    return [template.format(name) for template in PROMPT_TEMPLATES]


def is_coco_thing(index: int) -> bool:
    """Whether a COCO panoptic class index (0..132) is a thing (the first 80) rather than stuff."""
    if not 0 <= index < len(COCO_PANOPTIC_CLASSES):
        raise IndexError(
            f"COCO panoptic class index {index} outside 0..{len(COCO_PANOPTIC_CLASSES) - 1}"
        )
    return index < NUM_COCO_THINGS


def coco_panoptic_vocabulary(*, with_background: bool = True) -> list[str]:
    """The 133 COCO panoptic names in official order, plus :data:`BACKGROUND` last by default."""
    names = list(COCO_PANOPTIC_CLASSES)
    if with_background:
        names.append(BACKGROUND)
    return names
