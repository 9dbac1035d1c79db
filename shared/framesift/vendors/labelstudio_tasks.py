"""Label Studio's task shape, which its adapter (:mod:`framesift.vendors.labelstudio`), its
callbacks (:mod:`framesift.vendors.labelstudio_callbacks`) and the manifests' import files
(:mod:`framesift.vendors.manifest`) share: the project's labeling config, one control per
configured shape (``FRAMESIFT_LABELING_SHAPES``), and a pre-labeled frame as a prediction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from framesift.geometry import Shape
from framesift.ports import LabelingRequest

# The control tag of each shape in the project's labeling config, and the result type and
# value key Label Studio gives its regions.
CONTROLS = {
    Shape.BOX: ("RectangleLabels", "label", "rectanglelabels"),
    Shape.POLYGON: ("PolygonLabels", "polygon", "polygonlabels"),
    Shape.KEYPOINT: ("KeyPointLabels", "keypoint", "keypointlabels"),
    Shape.MASK: ("BrushLabels", "brush", "brushlabels"),
}


def label_config(classes: Sequence[str], shapes: Sequence[Shape] = (Shape.BOX,)) -> str:
    # model_index orders keypoints in Label Studio's own COCO export, which refuses without it.
    labels = "".join(
        f'<Label value={quoteattr(name)} model_index="{index}"/>'
        for index, name in enumerate(classes)
    )
    controls = "".join(
        f'<{tag} name="{name}" toName="image">{labels}</{tag}>'
        for tag, name, _ in (CONTROLS[shape] for shape in shapes)
    )
    return f'<View><Image name="image" value="$image"/>{controls}</View>'


def prediction(frame: LabelingRequest) -> dict[str, Any]:
    """A frame's pre-label as a Label Studio prediction: its boxes in percent of the image,
    each with its score, and as the prediction's score the model's confidence in the frame
    (1 - its uncertainty: sorting the Data Manager by it lists the most uncertain first)."""
    _, from_name, result_type = CONTROLS[Shape.BOX]
    return {
        "model_version": frame.model_version,
        "score": 1 - (frame.uncertainty or 0.0),
        "result": [
            {
                "id": f"p{slot}",
                "from_name": from_name,
                "to_name": "image",
                "type": result_type,
                "original_width": frame.width,
                "original_height": frame.height,
                "image_rotation": 0,
                "score": box.score,
                "value": {
                    "x": (box.x or 0.0) * 100,
                    "y": (box.y or 0.0) * 100,
                    "width": (box.w or 0.0) * 100,
                    "height": (box.h or 0.0) * 100,
                    "rotation": 0,
                    result_type: [box.label],
                },
            }
            for slot, box in enumerate(frame.prelabels)
        ],
    }
