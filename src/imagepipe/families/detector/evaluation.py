"""The detector on the test scenes (mAP by pycocotools) and what it is served with.

Boxes come from the served model's own decoding (`imagepipe.tracking.serving.detections`), so
what is scored is what a user gets. Metrics (metrics/detector.json): `test_map50`, the champion
metric, COCO's mAP at IoU 0.5 (101-point interpolated, averaged over the classes with test
boxes); `test_map50_95`, averaged over IoU 0.5, 0.55, …, 0.95; `per_class_ap50` {class name:
AP at 0.5, or null for a class without test boxes}; `num_test_scenes`. The items are per-scene
rows (detector.average_precision.scene_rows) from which the AP at 0.5 is computed again.
"""

import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from imagepipe.core.params import Params
from imagepipe.core.sections import TrainDetectorParams
from imagepipe.data.scenes import Scenes, item_class_names, load_scenes
from imagepipe.families.base import Evaluation, Serving
from imagepipe.families.detector.average_precision import SceneBoxes, scene_rows
from imagepipe.families.detector.coco import coco_scores
from imagepipe.tracking.serving import BOX_COLUMNS, detections

logger = logging.getLogger(__name__)

SERVING_EXAMPLES = 4
MAX_DETECTIONS = 100  # per scene, as COCO's mAP counts at most
PREDICT_BATCH = 256


def detection_config(model: keras.Model, section: TrainDetectorParams, class_names: list[str]) -> dict:
    """The served model's config; its stride is the model's (input height over grid rows)."""
    input_shape = [int(size) for size in model.input_shape[1:]]
    return {
        "kind": "detector",
        "input_scale": 1 / 255,
        "class_names": list(class_names),
        "input_shape": input_shape,
        "stride": input_shape[0] // int(model.output_shape[1]),
        "score_threshold": section.score_threshold,
        "nms_iou": section.nms_iou,
        "max_detections": MAX_DETECTIONS,
    }


def detect(model: keras.Model, inputs: np.ndarray, config: dict) -> pd.DataFrame:
    """The detections table of inputs (pixels in [0, 1]), as the served model answers."""
    return detections(model.predict(inputs, batch_size=PREDICT_BATCH, verbose=0), config)


def per_scene(table: pd.DataFrame, count: int, class_names: list[str]) -> list[SceneBoxes]:
    """A detections table as SceneBoxes for each of count scenes."""
    index = {name: label for label, name in enumerate(class_names)}
    images = table["image"].to_numpy()
    labels = table["class"].map(index).to_numpy(dtype=np.int64)
    boxes, scores = table[list(BOX_COLUMNS)].to_numpy(np.float64), table["score"].to_numpy(np.float64)
    bounds = np.searchsorted(images, np.arange(count + 1), side="left")  # the table is in image order
    return [SceneBoxes(boxes[a:b], labels[a:b], scores[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def truth_of(scenes: Scenes) -> list[SceneBoxes]:
    return [SceneBoxes(*scenes.items(index)) for index in range(scenes.count)]


def evaluate(model: keras.Model, data: Path, params: Params) -> Evaluation:
    test = load_scenes(data, "test")
    class_names = item_class_names(data)
    config = detection_config(model, params.train_detector, class_names)
    found = per_scene(detect(model, test.inputs(), config), test.count, class_names)
    truth = truth_of(test)
    metrics = coco_scores(found, truth, class_names, test.images.shape[1:3])
    return Evaluation({**metrics, "num_test_scenes": test.count}, scene_rows(found, truth, len(class_names)))


def serving(model: keras.Model, data: Path, params: Params) -> Serving:
    """Served on raw pixels (0..255, scaled by 1/255 before the model), answering a table of
    detections (imagepipe.tracking.serving.detections)."""
    example = load_scenes(data, "val").images[:SERVING_EXAMPLES].astype(np.float32)
    config = detection_config(model, params.train_detector, item_class_names(data))
    return Serving(example, detect(model, example * np.float32(config["input_scale"]), config), config)
