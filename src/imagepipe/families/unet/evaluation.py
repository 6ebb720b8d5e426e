"""The U-Net on the test scenes (mean IoU, pixel accuracy, IoU per class) and what it is served with.

Metrics (metrics/unet.json): `test_mean_iou`, the champion metric, is the mean over mask
classes (background included) of the IoU of the whole test set's pixels, over the classes in
its truth or predictions; `test_pixel_accuracy`; `per_class_iou`, {class name: IoU or null
for a class in neither}; `num_test_scenes`. The items are each scene's confusion matrix.
"""

from pathlib import Path

import keras
import numpy as np

from imagepipe.core.params import Params
from imagepipe.data.scenes import load_scenes, mask_class_names
from imagepipe.families.base import Evaluation, Serving
from imagepipe.families.unet.iou import class_iou, confusion_matrices, mean_iou, pixel_accuracy

SERVING_EXAMPLES = 4


def predict_masks(model: keras.Model, inputs: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Each pixel's most probable class: int32 (n, height, width), from inputs in [0, 1]."""
    return model.predict(inputs, batch_size=batch_size, verbose=0).argmax(axis=-1).astype(np.int32)


def scores(confusion: np.ndarray, class_names: list[str]) -> dict:
    """The metrics of a test set's confusion matrices (n, K, K)."""
    total = confusion.sum(axis=0)
    ious = class_iou(total)
    return {
        "test_mean_iou": mean_iou(total),
        "test_pixel_accuracy": pixel_accuracy(total),
        "per_class_iou": {
            name: (float(iou) if np.isfinite(iou) else None) for name, iou in zip(class_names, ious, strict=True)
        },
        "num_test_scenes": len(confusion),
    }


def evaluate(model: keras.Model, data: Path, params: Params) -> Evaluation:
    test = load_scenes(data, "test")
    class_names = mask_class_names(data)
    predicted = predict_masks(model, test.inputs(), params.train_unet.batch_size)
    confusion = confusion_matrices(test.masks, predicted, len(class_names))
    return Evaluation(scores(confusion, class_names), confusion.reshape(len(confusion), -1).astype(np.float64))


def serving(model: keras.Model, data: Path, params: Params) -> Serving:
    """Served on raw pixels (0..255, scaled by 1/255 before the model), answering argmax masks."""
    example = load_scenes(data, "val").images[:SERVING_EXAMPLES].astype(np.float32)
    config = {
        "kind": "segmenter",
        "input_scale": 1 / 255,
        "class_names": mask_class_names(data),
        "input_shape": list(example.shape[1:]),
    }
    return Serving(example, predict_masks(model, example / 255, params.train_unet.batch_size), config)
