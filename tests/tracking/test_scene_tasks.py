import hashlib
import json

import numpy as np

from imagepipe.data.scenes import Scenes, save_scenes, scenes_path
from imagepipe.tracking.scene_tasks import scene_task
from imagepipe.tracking.tasks import Task


def write_scenes(directory, pixel: int = 0) -> None:
    images = np.full((2, 6, 6, 1), pixel, np.uint8)
    boxes, labels = np.zeros((2, 1, 4), np.float32), np.zeros((2, 1), np.int32)
    save_scenes(directory, "test", Scenes(images, np.zeros((2, 6, 6), np.uint8), boxes, labels))
    (directory / "classes.json").write_text(json.dumps(["cat", "dog"]))


def test_the_scene_task_fingerprints_the_test_files_bytes(tmp_path):
    write_scenes(tmp_path)
    test_bytes = scenes_path(tmp_path, "test").read_bytes()
    assert scene_task(tmp_path) == Task(("cat", "dog"), (6, 6, 1), hashlib.sha256(test_bytes).hexdigest())
    write_scenes(tmp_path, pixel=1)
    assert scene_task(tmp_path).test_fingerprint != hashlib.sha256(test_bytes).hexdigest()
