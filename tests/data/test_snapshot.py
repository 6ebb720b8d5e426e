import os

from imagepipe.core.sections import DataParams
from imagepipe.data.sources.snapshot import snapshot


def params(source, dataset="image_folder") -> DataParams:
    return DataParams(
        dataset=dataset,
        source=source,
        max_train_images=None,
        max_test_images=None,
        test_fraction=0.2,
        skip_unreadable=False,
    )


def test_a_folder_snapshot_changes_exactly_when_its_files_do(tmp_path):
    folder = tmp_path / "fruits"
    (folder / "apples").mkdir(parents=True)
    (folder / "apples" / "a.png").write_bytes(b"one")
    first = snapshot(params(str(folder)))
    assert first["files"] == 1 and first["bytes"] == 3
    assert snapshot(params(folder.as_uri())) | {"source": None} == first | {"source": None}
    assert snapshot(params(str(folder))) == first

    (folder / "apples" / "b.png").write_bytes(b"two")
    added = snapshot(params(str(folder)))
    assert added["files"] == 2 and added["listing_sha256"] != first["listing_sha256"]
    stat = (folder / "apples" / "a.png").stat()
    os.utime(folder / "apples" / "a.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert snapshot(params(str(folder)))["listing_sha256"] != added["listing_sha256"]


def test_a_remote_or_default_source_is_its_name_alone():
    assert snapshot(params(None, "fashion_mnist")) == {"dataset": "fashion_mnist", "source": None}
    assert snapshot(params("https://u:secret@mirror.example/mnist/", "mnist")) == {
        "dataset": "mnist",
        "source": "https://***@mirror.example/mnist/",
    }
