import json

import numpy as np
import pytest

from imagepipe.tracking.tasks import Task, registered_model, registered_name, task_name, task_of
from tests.helpers.data import write_processed


@pytest.mark.parametrize(
    ("name", "dataset", "source", "expected"),
    [
        (None, "fashion_mnist", None, "fashion_mnist"),
        (None, "fashion_mnist", "/usr/share/datasets/fashion-mnist", "fashion_mnist"),
        (None, "image_folder", "/home/me/My Pets (2024)/", "My_Pets_2024"),
        (None, "image_folder", "file:///data/chats_noirs_é.tar.gz", "chats_noirs"),
        (None, "image_folder", "https://example.org/sets/birds.zip?token=x", "birds"),
        ("pets v2", "image_folder", "/data/pets", "pets_v2"),
    ],
)
def test_task_names(name, dataset, source, expected):
    assert task_name(name, dataset, source) == expected


def test_a_name_with_nothing_usable_is_refused():
    with pytest.raises(ValueError, match=r"registry.task gives no usable task name; set registry.task"):
        task_name("ééé", "image_folder", "/data/pets")


def test_registered_models_per_family(make_params):
    params = make_params(
        data={"dataset": "image_folder", "source": "/data/pets"},
        prepare_transfer={"dataset": "digits", "source": None},
    )
    assert [registered_model(params, family) for family in ("cnn", "gan", "transfer")] == [
        "pets-cnn",
        "pets-gan",
        "digits-transfer",
    ]
    renamed = make_params(registry={"task": "pets-64", "transfer_task": "few-digits"})
    assert registered_model(renamed, "cnn") == "pets-64-cnn" == registered_name("pets-64", "cnn")
    assert registered_model(renamed, "transfer") == "few-digits-transfer"


def test_a_task_is_its_classes_and_shape_and_its_test_set_has_a_fingerprint(tmp_path):
    task = task_of(write_processed(tmp_path / "a", num_classes=3, per_class=20))
    assert task.class_names == ("class 0", "class 1", "class 2") and task.input_shape == (28, 28, 1)
    assert task_of(write_processed(tmp_path / "b", num_classes=3, per_class=20)) == task  # same bytes
    other_images = task_of(write_processed(tmp_path / "c", num_classes=3, per_class=20, seed=1))
    assert other_images.test_fingerprint != task.test_fingerprint and not other_images.differs_from(task.tags())
    relabelled = write_processed(tmp_path / "d", num_classes=3, per_class=20)
    labels_file = next(relabelled.glob("test-*-labels.npy"))
    np.save(labels_file, np.load(labels_file)[::-1])
    assert task_of(relabelled).test_fingerprint != task.test_fingerprint


def test_another_task_differs_and_an_untagged_model_holds_none():
    task = Task(("cat", "dog"), (4, 4, 1), "f")
    assert json.loads(task.tags()["task.class_names"]) == ["cat", "dog"]
    assert not task.differs_from({}) and not task.differs_from(task.tags())
    assert task.differs_from(Task(("cat", "dog"), (8, 8, 1), "f").tags())
    assert task.differs_from(Task(("dog", "cat"), (4, 4, 1), "f").tags())
