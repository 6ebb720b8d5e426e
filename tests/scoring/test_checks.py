"""New images listed, summarised and validated with Great Expectations: strays skipped, bad files named."""

import zipfile

import numpy as np
import pytest
from PIL import Image

from imagepipe.scoring.checks import validate_images
from imagepipe.scoring.images import ImageSourceError, batches, image_stats, list_images, resolve_folder
from tests.helpers.data import write_image

SHAPE = (28, 28, 1)


@pytest.fixture
def inbox(tmp_path):
    """Four 28×28 grayscale images (one in a subfolder) and the strays a user's folder collects."""
    folder = tmp_path / "inbox"
    (folder / "day 2").mkdir(parents=True)
    for index, name in enumerate(["a.png", "b.PNG", "day 2/c.jpg", "day 2/d.bmp"]):
        write_image(folder / name, "L", (28, 28), seed=index)
    (folder / "Thumbs.db").write_bytes(b"\0" * 16)
    (folder / ".DS_Store").write_bytes(b"\0" * 16)
    (folder / "__MACOSX").mkdir()
    (folder / "__MACOSX" / "._a.png").write_bytes(b"\0" * 16)
    return folder


def stats_of(folder):
    paths, _ = list_images(folder)
    return [image_stats(path, folder) for path in paths]


def test_images_are_listed_and_strays_skipped(inbox):
    paths, skipped = list_images(inbox)
    assert [path.relative_to(inbox).as_posix() for path in paths] == ["a.png", "b.PNG", "day 2/c.jpg", "day 2/d.bmp"]
    assert [path.name for path in skipped] == ["Thumbs.db"]
    (chosen, images), *rest = list(batches(paths, SHAPE, 3))
    assert images.shape == (3, 28, 28, 1) and images.dtype == np.uint8 and rest[0][1].shape == (1, 28, 28, 1)


def test_an_archive_is_read_like_its_folder(inbox, tmp_path):
    archive = tmp_path / "new.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in list_images(inbox)[0]:
            bundle.write(path, f"new/{path.relative_to(inbox).as_posix()}")
    folder = resolve_folder(archive.as_uri(), tmp_path / "cache")
    assert [path.name for path in list_images(folder)[0]] == ["a.png", "b.PNG", "c.jpg", "d.bmp"]
    with pytest.raises(ImageSourceError, match="local directory or a .zip"):
        resolve_folder("https://example.com/new.zip", tmp_path / "cache")


def test_images_of_the_models_shape_pass(inbox):
    report = validate_images(stats_of(inbox), SHAPE, resize=False)
    assert report.success, report.failures


def test_unreadable_wrong_shape_and_out_of_range_images_fail_with_their_names(inbox):
    (inbox / "broken.png").write_bytes(b"not a png")
    write_image(inbox / "colour.png", "RGB", (32, 32), seed=9)
    # A 16-bit image with values above 255: converting it to 8 bits would clip it white.
    Image.fromarray(np.full((28, 28), 4000, np.uint16)).save(inbox / "sixteen.png")
    report = validate_images(stats_of(inbox), SHAPE, resize=False)
    assert not report.success
    text = "\n".join(report.failures)
    assert "every image file decodes" in text and "broken.png" in text and "cannot decode image" in text
    assert "image height is 28" in text and "colour.png=32" in text
    assert "image channels is 1" in text and "colour.png=3" in text
    assert "pixel values within [0, 255]" in text and "sixteen.png=4000" in text
    resized = validate_images(stats_of(inbox), SHAPE, resize=True)
    assert "colour.png" not in "\n".join(resized.failures) and not resized.success


def test_an_empty_folder_fails(tmp_path):
    report = validate_images([], SHAPE, resize=False)
    assert not report.success and "there are images to score" in report.failures[0]
