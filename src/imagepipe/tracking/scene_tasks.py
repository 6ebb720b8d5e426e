"""The task of composed scenes (data/scenes), which keeps the segmentation and detection
champions of one dataset's scenes apart from another's (imagepipe.tracking.tasks)."""

from pathlib import Path

import numpy as np

from imagepipe.data.scenes import item_class_names, scenes_path
from imagepipe.data.shards import file_sha256
from imagepipe.tracking.tasks import Task


def scene_task(directory: Path) -> Task:
    """The scenes' item classes, scene shape, and the test split's fingerprint (its file:
    images, masks and boxes)."""
    test = scenes_path(directory, "test")
    with np.load(test, allow_pickle=False) as arrays:
        shape = tuple(int(size) for size in arrays["images"].shape[1:])
    return Task(tuple(item_class_names(directory)), shape, file_sha256(test))
