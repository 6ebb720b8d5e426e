"""mAP of detections by pycocotools' COCOeval, with the ground truth and detections built in memory.

COCO boxes are [x, y, width, height]; ours are pixel edges, converted by `xywh`. Ids start at 1
(COCOeval takes a match to ground truth id 0 for no match). COCOeval prints as it works; that
goes nowhere.
"""

import contextlib
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from imagepipe.families.detector.average_precision import SceneBoxes, xywh


def coco_dataset(scenes: list[SceneBoxes], num_classes: int, shape: tuple[int, int]) -> COCO:
    """A COCO object of scenes' boxes (with `score` where the scenes have scores)."""
    annotations: list[dict] = []
    for image, scene in enumerate(scenes):
        for box, label, index in zip(xywh(scene.boxes), scene.labels, range(len(scene.labels)), strict=True):
            annotation = {
                "id": len(annotations) + 1,
                "image_id": image + 1,
                "category_id": int(label) + 1,
                "bbox": [float(value) for value in box],
                "area": float(box[2] * box[3]),
                "iscrowd": 0,
            }
            if scene.scores is not None:
                annotation["score"] = float(scene.scores[index])
            annotations.append(annotation)
    dataset = COCO()
    dataset.dataset = {
        "images": [{"id": image + 1, "height": shape[0], "width": shape[1]} for image in range(len(scenes))],
        "categories": [{"id": label + 1, "name": str(label)} for label in range(num_classes)],
        "annotations": annotations,
    }
    with contextlib.redirect_stdout(io.StringIO()):
        dataset.createIndex()
    return dataset


def coco_precision(found: list[SceneBoxes], truth: list[SceneBoxes], num_classes: int, shape: tuple[int, int]):
    """COCOeval's interpolated precision (IoU thresholds, recall points, classes), all areas,
    at most 100 detections per scene; -1 for a class without true boxes."""
    if len(found) != len(truth):
        raise ValueError(f"need detections for every scene: {len(found)} scenes of detections, {len(truth)} scenes")
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = COCOeval(coco_dataset(truth, num_classes, shape), coco_dataset(found, num_classes, shape), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
    return evaluation.eval["precision"][:, :, :, 0, -1]


def coco_scores(found: list[SceneBoxes], truth: list[SceneBoxes], class_names: list[str], shape: tuple[int, int]):
    """`test_map50`, `test_map50_95` and `per_class_ap50` {class name: AP at IoU 0.5, or None
    for a class without true boxes}; mAPs are 0 when no class has true boxes."""
    precision = coco_precision(found, truth, len(class_names), shape)

    def mean(values: np.ndarray) -> float:
        present = values[values > -1]
        return float(present.mean()) if present.size else 0.0

    return {
        "test_map50": mean(precision[0]),
        "test_map50_95": mean(precision),
        "per_class_ap50": {
            name: (mean(precision[0, :, k]) if (precision[0, :, k] > -1).any() else None)
            for k, name in enumerate(class_names)
        },
    }
