import functools
import http.server
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagepipe.data.sources.datasets import DEBIAN_FASHION_MNIST
from imagepipe.data.sources.fetch import DownloadError
from imagepipe.data.sources.image_folder import ImageFolderError
from imagepipe.data.sources.raw import build_raw
from imagepipe.data.splits import SplitError
from imagepipe.data.storage import save_raw

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Read:
    images: np.ndarray
    labels: np.ndarray


def build(params, tmp_path, **specs):
    """build_raw's splits, decoded whole (the stage writes them a shard at a time instead)."""
    train, test, names, manifest = build_raw(
        params.data, params.seed, tmp_path / "cache", **({"specs": specs} if specs else {})
    )
    size = (params.image.height, params.image.width, params.image.channels)
    return read(train, size), read(test, size), names, manifest


def read(split, size) -> Read:
    batches = list(split.batches(size))
    return Read(np.concatenate([images for images, _ in batches]), np.concatenate([labels for _, labels in batches]))


@pytest.mark.parametrize("dataset", ["fashion_mnist", "mnist"])
def test_idx_datasets_from_local_mirror(make_params, idx_mirror, tmp_path, dataset):
    mirror, spec = idx_mirror
    params = make_params(data={"dataset": dataset, "source": mirror.as_uri()})
    train, test, names, manifest = build(params, tmp_path, **{dataset: spec})
    assert train.images.shape == (200, 28, 28, 1) and train.images.dtype == np.uint8
    assert test.images.shape == (100, 28, 28, 1)
    assert names == list(spec.class_names)
    assert manifest["source"] == mirror.as_uri()


def test_manifest_names_an_http_source_without_its_credentials(make_params, idx_mirror, tmp_path):
    mirror, spec = idx_mirror
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(mirror))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        params = make_params(data={"source": f"http://u:s3cret@127.0.0.1:{port}/"})
        _, _, _, manifest = build(params, tmp_path, fashion_mnist=spec)
    finally:
        server.shutdown()
        server.server_close()
    assert manifest["source"] == f"http://***@127.0.0.1:{port}/"


def test_source_override_is_the_only_source_tried(make_params, idx_mirror, tmp_path):
    mirror, spec = idx_mirror
    (mirror / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b tampered")
    params = make_params(data={"source": str(mirror)})
    with pytest.raises(DownloadError) as caught:
        build(params, tmp_path, fashion_mnist=spec)
    assert "checksum mismatch" in str(caught.value)
    assert DEBIAN_FASHION_MNIST not in str(caught.value)


@pytest.mark.skipif(
    not Path(DEBIAN_FASHION_MNIST).is_dir(), reason="needs Debian's dataset-fashion-mnist (make test installs it)"
)
def test_real_fashion_mnist_with_caps_is_stratified(make_params, tmp_path):
    params = make_params(data={"source": DEBIAN_FASHION_MNIST, "max_train_images": 1000, "max_test_images": 500})
    train, test, names, _ = build(params, tmp_path)
    assert names[0] == "T-shirt/top" and len(names) == 10
    assert np.bincount(train.labels).tolist() == [100] * 10
    assert np.bincount(test.labels).tolist() == [50] * 10
    assert train.images.max() == 255


def test_digits_resized_to_configured_size(make_params, tmp_path):
    params = make_params(data={"dataset": "digits"}, image={"height": 16, "width": 16, "channels": 3})
    train, test, names, _ = build(params, tmp_path)
    assert train.images.shape[1:] == (16, 16, 3)
    assert len(train.labels) + len(test.labels) == 1797
    assert names == [str(d) for d in range(10)]
    assert abs(len(test.labels) / 1797 - 0.2) < 0.01


def test_cap_smaller_than_class_count_is_refused(make_params, tmp_path):
    params = make_params(data={"dataset": "digits", "max_train_images": 5})
    with pytest.raises(SplitError, match="data.max_train_images=5"):
        build(params, tmp_path)


def test_image_folder_mixed_sizes_and_modes(make_params, image_folder, tmp_path):
    params = make_params(data={"dataset": "image_folder", "source": str(image_folder), "test_fraction": 0.25})
    train, test, names, manifest = build(params, tmp_path)
    assert names == ["Apple Braeburn", "banana_ü", "cherry (red)"]
    assert train.images.shape == (27, 28, 28, 1) and test.images.shape == (9, 28, 28, 1)
    assert np.bincount(test.labels).tolist() == [3, 3, 3]
    assert manifest["skipped_files"] == []


def test_image_folder_with_train_and_test_folders_rgb(make_params, image_folder, tmp_path):
    root = tmp_path / "split"
    for split in ("Training", "Test"):
        (root / split).mkdir(parents=True)
        for class_dir in image_folder.iterdir():
            (root / split / class_dir.name).symlink_to(class_dir)
    params = make_params(
        data={"dataset": "image_folder", "source": str(root)}, image={"height": 32, "width": 24, "channels": 3}
    )
    train, test, names, _ = build(params, tmp_path)
    assert train.images.shape == (36, 32, 24, 3) and test.images.shape == (36, 32, 24, 3)


def test_files_that_are_not_images_are_skipped_and_listed(make_params, image_folder, tmp_path):
    strays = [image_folder / "banana_ü" / "Thumbs.db", image_folder / "cherry (red)" / "README.txt"]
    strays += [image_folder / "Apple Braeburn" / ".DS_Store"]
    for stray in strays:
        stray.write_bytes(b"\x00not an image")
    params = make_params(data={"dataset": "image_folder", "source": str(image_folder)})
    train, test, _, manifest = build(params, tmp_path)
    assert len(train.labels) + len(test.labels) == 36
    assert {entry["path"] for entry in manifest["skipped_files"]} == {str(stray) for stray in strays}
    assert all("not an image file" in entry["reason"] for entry in manifest["skipped_files"])


def test_unreadable_images_fail_by_path_or_are_skipped_and_reported(make_params, image_folder, tmp_path):
    corrupt = image_folder / "banana_ü" / "broken 1.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    params = make_params(data={"dataset": "image_folder", "source": str(image_folder)})
    with pytest.raises(ImageFolderError) as caught:
        build(params, tmp_path)
    message = str(caught.value)
    assert "1 unreadable image file(s)" in message and str(corrupt) in message
    assert "data.skip_unreadable: true" in message

    params = make_params(data={"dataset": "image_folder", "source": str(image_folder), "skip_unreadable": True})
    train, test, names, manifest = build_raw(params.data, params.seed, tmp_path / "cache")
    written = save_raw(tmp_path / "raw", {"train": train, "test": test}, (28, 28, 1), names, manifest)
    assert written["num_train"] + written["num_test"] == 36
    assert [entry["path"] for entry in written["unreadable_files"]] == [str(corrupt)]


@pytest.mark.parametrize("suffix, mode", [(".bmp", "RGB"), (".gif", "P"), (".webp", "RGB"), (".JPG", "RGB")])
def test_bmp_gif_and_webp_read_like_keras_reads_them(make_params, image_folder, tmp_path, suffix, mode):
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).convert(mode)
    image.save(image_folder / "banana_ü" / f"extra{suffix}", **({"lossless": True} if suffix == ".webp" else {}))
    params = make_params(
        data={"dataset": "image_folder", "source": str(image_folder)}, image={"height": 20, "width": 30, "channels": 3}
    )
    train, test, _, manifest = build(params, tmp_path)
    assert len(train.labels) + len(test.labels) == 37 and manifest["skipped_files"] == []
    if suffix in (".bmp", ".webp"):  # lossless: the pixels come back exactly
        stored = np.concatenate([train.images, test.images])
        assert any(np.array_equal(image, pixels) for image in stored)


def test_image_folder_needs_two_classes(make_params, tmp_path):
    (tmp_path / "only" / "apples").mkdir(parents=True)
    Image.new("L", (8, 8)).save(tmp_path / "only" / "apples" / "a.png")
    params = make_params(data={"dataset": "image_folder", "source": str(tmp_path / "only")})
    with pytest.raises(
        ImageFolderError, match=r"found 1 class folder\(s\) \['apples'\]; a classification dataset needs at least 2"
    ):
        build(params, tmp_path)


def test_image_folder_from_a_zip_file_url(make_params, image_folder, tmp_path):
    import zipfile

    archive = tmp_path / "fruits.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(image_folder.rglob("*")):
            bundle.write(path, path.relative_to(image_folder.parent).as_posix())
    from_folder = build(make_params(data={"dataset": "image_folder", "source": str(image_folder)}), tmp_path)
    train, test, names, manifest = build(
        make_params(data={"dataset": "image_folder", "source": archive.as_uri()}), tmp_path
    )
    assert names == from_folder[2] == ["Apple Braeburn", "banana_ü", "cherry (red)"]
    for split, expected in ((train, from_folder[0]), (test, from_folder[1])):
        np.testing.assert_array_equal(split.images, expected.images)
        np.testing.assert_array_equal(split.labels, expected.labels)
    assert manifest["source"] == str(archive) and len(manifest["source_sha256"]) == 64
    assert (tmp_path / "cache" / "image_folder" / manifest["source_sha256"] / "fruits").is_dir()


def test_image_folder_archive_must_be_local(make_params, tmp_path):
    params = make_params(data={"dataset": "image_folder", "source": "https://mirror.invalid/fruits.zip"})
    with pytest.raises(
        ImageFolderError, match=r"\.zip, \.tar, \.tar\.gz, \.tgz archive of one .*remote URLs are not supported"
    ):
        build(params, tmp_path)


def test_failed_download_leaves_no_output(tmp_path, raw_params):
    """The stage's command line: a bad mirror exits 1 with the reason, and data/raw never appears."""
    import yaml

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "train-images-idx3-ubyte.gz").write_bytes(b"truncated")
    raw_params["data"]["source"] = str(mirror)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params))
    out = tmp_path / "data" / "raw"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stages.download",
            "--params",
            str(tmp_path / "params.yaml"),
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1
    assert "error: no source gave verified files" in result.stderr
    assert "train-images-idx3-ubyte.gz is truncated or corrupt" in result.stderr
    assert not out.exists() and not list(out.parent.glob(".raw*"))
