import json

import keras
import mlflow
import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from imagepipe.core.errors import StageError
from imagepipe.data.scenes import Scenes, save_scenes
from imagepipe.families.unet.evaluation import scores
from imagepipe.families.unet.iou import class_iou, confusion_matrices, mean_iou, weighted_mean_iou
from imagepipe.families.unet.model import unet
from stages import evaluate_family, train_family
from tests.helpers.stages import run_main

TINY = {"filters": 4, "depth": 2, "epochs": 1, "batch_size": 8, "learning_rate": 0.01}


@pytest.mark.parametrize("shape", [(64, 64, 1), (32, 32, 3)])
def test_the_unet_gives_class_probabilities_per_pixel(shape):
    model = unet(shape, 5, 4, 3)
    assert model.output_shape == (None, *shape[:2], 5)
    probabilities = model.predict(np.random.default_rng(0).random((2, *shape), np.float32), verbose=0)
    assert probabilities.shape == (2, *shape[:2], 5)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1, atol=1e-5)


def test_each_decoder_level_joins_the_encoder_level_of_its_size():
    model = unet((32, 32, 1), 3, 4, 3)
    # The stride-2 stem halves the canvas before the first level.
    for level in range(3):
        skip, encoder = model.get_layer(f"skip{level}"), model.get_layer(f"down{level}_relu2")
        assert any(tensor is encoder.output for tensor in skip.input)
        assert skip.output.shape[1:3] == encoder.output.shape[1:3] == (32 // 2 ** (level + 1),) * 2
    skip, full = model.get_layer("skip_full"), model.get_layer("full_relu")
    assert any(tensor is full.output for tensor in skip.input)
    assert skip.output.shape[1:3] == full.output.shape[1:3] == (32, 32)


def test_a_canvas_that_depth_does_not_divide_is_refused():
    with pytest.raises(StageError, match=r"divide by 2\*\*\(depth \+ 1\) = 16, got 56×64"):
        unet((56, 64, 1), 3, 4, 3)


def test_confusion_matrices_count_pixels_per_scene():
    truth = np.array([[[0, 0], [1, 1]], [[1, 1], [1, 1]]])
    predicted = np.array([[[0, 1], [1, 1]], [[1, 1], [0, 1]]])
    assert confusion_matrices(truth, predicted, 2).tolist() == [[[1, 1], [0, 2]], [[0, 0], [1, 3]]]


def test_iou_of_known_cases():
    truth = np.array([[[0, 0], [1, 1]], [[1, 1], [1, 1]]])
    assert mean_iou(confusion_matrices(truth, truth, 2).sum(axis=0)) == 1.0
    # Summed: class 0 has 1 hit, 1 false positive, 1 miss (IoU 1/3); class 1 has 5 hits of a union of 7.
    predicted = np.array([[[0, 1], [1, 1]], [[1, 1], [0, 1]]])
    total = confusion_matrices(truth, predicted, 2).sum(axis=0)
    np.testing.assert_allclose(class_iou(total), [1 / 3, 5 / 7])
    assert mean_iou(total) == pytest.approx((1 / 3 + 5 / 7) / 2)
    # Class 2 is in neither truth nor prediction: skipped, not counted as 0 (nor as 1).
    three = confusion_matrices(truth, predicted, 3).sum(axis=0)
    assert np.isnan(class_iou(three)[2]) and mean_iou(three) == pytest.approx(mean_iou(total))
    assert scores(confusion_matrices(truth, predicted, 3), ["background", "cat", "dog"])["per_class_iou"] == {
        "background": pytest.approx(1 / 3),
        "cat": pytest.approx(5 / 7),
        "dog": None,
    }


def test_mean_iou_equals_keras_and_weights_count_scenes():
    rng = np.random.default_rng(0)
    truth, predicted = rng.integers(0, 4, (12, 8, 8)), rng.integers(0, 4, (12, 8, 8))
    predicted[truth == 1] = 1  # unequal IoUs
    items = confusion_matrices(truth, predicted, 4).reshape(12, -1)
    metric = keras.metrics.MeanIoU(4)
    metric.update_state(truth.ravel(), predicted.ravel())
    assert weighted_mean_iou(items, np.ones(12)) == pytest.approx(float(metric.result()), rel=1e-6)
    weights = rng.integers(0, 3, 12)
    repeated = np.repeat(items, weights, axis=0)  # a resample, as whole copies of scenes
    assert weighted_mean_iou(items, weights) == pytest.approx(weighted_mean_iou(repeated, np.ones(len(repeated))))


def test_masks_outside_the_classes_and_bad_items_are_refused():
    with pytest.raises(ValueError, match=r"predicted masks hold classes 0..3, outside 0..2"):
        confusion_matrices(np.zeros((1, 2, 2), int), np.array([[[0, 3], [1, 2]]]), 3)
    with pytest.raises(ValueError, match="flattened square confusion matrices"):
        weighted_mean_iou(np.zeros((3, 5)), np.ones(3))


def tiny_scenes(directory, seed=0):
    """Scenes of 32×32 with a bright square (cat) and, in every other one, a grey bar (dog)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True)
    for split, count in (("train", 24), ("val", 8), ("test", 8)):
        images = rng.integers(0, 40, (count, 32, 32, 1)).astype(np.uint8)
        masks = np.zeros((count, 32, 32), np.uint8)
        boxes, labels = np.zeros((count, 2, 4), np.float32), np.full((count, 2), -1, np.int32)
        for index in range(count):
            for slot, (label, value) in enumerate(((0, 250), (1, 150))[: 1 + index % 2]):
                x, y = 2 + 16 * slot + rng.integers(0, 3), rng.integers(2, 20)
                width = 5 + 5 * label
                images[index, y : y + 10, x : x + width] = value
                masks[index, y : y + 10, x : x + width] = label + 1
                boxes[index, slot], labels[index, slot] = [x, y, x + width, y + 10], label
        save_scenes(directory, split, Scenes(images, masks, boxes, labels))
    (directory / "classes.json").write_text(json.dumps(["cat", "dog"]))
    (directory / "summary.json").write_text(json.dumps({"success": True}))
    return directory


def test_stages_train_evaluate_and_serve_the_unet(mlflow_store, tmp_path, monkeypatch, raw_params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params | {"train_unet": TINY}))
    tiny_scenes(tmp_path / "scenes")
    places = ["--model-dir", "models/unet", "--plots", "plots/unet", "--family", "unet"]
    run_main(train_family, monkeypatch, "--data", "scenes", *places)
    assert "val_mean_iou" in (tmp_path / "plots/unet/history.csv").read_text().splitlines()[0]
    run_main(
        evaluate_family,
        monkeypatch,
        *places,
        "--data",
        "scenes",
        "--validation",
        "scenes/summary.json",
        "--metrics",
        "metrics/unet.json",
    )
    metrics = json.loads((tmp_path / "metrics/unet.json").read_text())
    assert metrics["num_test_scenes"] == 8 and set(metrics["per_class_iou"]) == {"background", "cat", "dog"}
    low, high = metrics["test_mean_iou_ci"]
    assert 0 <= low <= metrics["test_mean_iou"] <= high <= 1 and 0 <= metrics["test_pixel_accuracy"] <= 1
    assert (tmp_path / "plots/unet/pictures/segmentation.png").exists()
    name = f"{raw_params['data']['dataset']}-unet"
    champion = MlflowClient(mlflow_store).get_model_version_by_alias(name, "champion")
    served = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    masks = served.predict(np.full((2, 32, 32, 1), 30, np.float32))
    assert str(champion.version) == "1" and masks.shape == (2, 32, 32) and masks.dtype == np.int32
    assert served.model_config["kind"] == "segmenter"
    assert served.model_config["class_names"] == ["background", "cat", "dog"]
