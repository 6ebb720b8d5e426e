"""What a model is for: its task, which keeps one task's champion apart from another's.

A task is its class names and input shape; scores compare only on the same test set, named by
its fingerprint. Registered models are named `<task>-<family>` (`fashion_mnist-cnn`), so each
task has its own champion, and the registered model's tags record the task it holds.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from imagepipe.core.files import read_json
from imagepipe.core.params import Params
from imagepipe.data.shards import open_split

ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip")
NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9_.-]+")
CLASS_NAMES_TAG = "task.class_names"
INPUT_SHAPE_TAG = "task.input_shape"
TEST_FINGERPRINT_TAG = "test_fingerprint"


@dataclass(frozen=True)
class Task:
    class_names: tuple[str, ...]
    input_shape: tuple[int, ...]
    test_fingerprint: str

    @property
    def shape_text(self) -> str:
        return "×".join(str(size) for size in self.input_shape)

    def describe(self) -> str:
        names = ", ".join(self.class_names[:4]) + (", …" if len(self.class_names) > 4 else "")
        return f"{len(self.class_names)} classes ({names}) at {self.shape_text}"

    def tags(self) -> dict[str, str]:
        """The registered model's tags naming its task (the test fingerprint goes on versions)."""
        return {
            CLASS_NAMES_TAG: json.dumps(list(self.class_names), ensure_ascii=False),
            INPUT_SHAPE_TAG: "x".join(str(size) for size in self.input_shape),
        }

    def differs_from(self, tags: dict[str, str]) -> bool:
        """Whether tags (a registered model's) name another task; tags without a task differ from none."""
        return CLASS_NAMES_TAG in tags and any(tags.get(key) != value for key, value in self.tags().items())


def task_of(data: Path) -> Task:
    """The task of a sharded data directory with `classes.json` (data/processed, data/transfer):
    its class names, its images' shape, and its test split's fingerprint (images and labels)."""
    test = open_split(Path(data), "test")
    digest = hashlib.sha256()
    for shard in test.shards:
        digest.update(shard["sha256"].encode())
    digest.update(test.labels().astype("<i8").tobytes())
    class_names = tuple(read_json(Path(data) / "classes.json"))
    return Task(class_names, tuple(test.shape), digest.hexdigest())


def task_name(name: str | None, dataset: str, source: str | None) -> str:
    """The task's name in registered model names: name when set, else a built-in dataset's name,
    else the image folder's (or archive's) name."""
    if name:
        return slug(name, "registry.task")
    if dataset != "image_folder" or not source:
        return dataset
    path = PurePosixPath(urlparse(source).path if "://" in source else source.replace("\\", "/"))
    base = path.name
    for suffix in ARCHIVE_SUFFIXES:
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
            break
    return slug(base, f"the source {source!r}")


def slug(text: str, what: str) -> str:
    """text with anything but letters, digits, `_ . -` replaced by `_`: a name MLflow and URIs take."""
    name = NOT_IN_NAMES.sub("_", text).strip("_.-")
    if not name:
        raise ValueError(f"{what} gives no usable task name; set registry.task (letters, digits, _ . -)")
    return name


def registered_name(task: str, family: str) -> str:
    return f"{task}-{family}"


def registered_model(params: Params, family: str) -> str:
    """The registered model a training stage registers under: the transfer model under the
    target task's name, the others under the pipeline's task."""
    if family == "transfer":
        section = params.prepare_transfer
        return registered_name(task_name(params.registry.transfer_task, section.dataset, section.source), family)
    return registered_name(task_name(params.registry.task, params.data.dataset, params.data.source), family)
