import numpy as np
import pytest
from PIL import Image

from imagepipe.data.sources.decode import decode_file, decode_files
from tests.helpers.data import write_image

SIZE = (16, 16, 3)


def make_files(folder, count):
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"image {index}.png" for index in range(count)]
    for index, path in enumerate(paths):
        write_image(path, "RGB", (20, 24), seed=index)
    return paths


@pytest.mark.parametrize("cached", [False, True], ids=["without a cache", "through the cache"])
def test_parallel_decoding_matches_one_worker_and_keeps_the_order(tmp_path, cached):
    paths = make_files(tmp_path / "images", 120)
    broken = tmp_path / "images" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    paths.insert(100, broken)
    cache = tmp_path / "cache" if cached else None
    serial = list(decode_files(paths, SIZE, None, workers=1))
    parallel = list(decode_files(paths, SIZE, cache, workers=2))
    assert parallel[100].image is None and parallel[100].error.startswith("cannot decode image")
    del serial[100], parallel[100]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(serial, parallel, strict=True))
    assert serial[0].image.shape == SIZE and serial[0].image.dtype == np.uint8
    if cached:  # a second pass finds every image in the cache
        assert all(decoded.cached for decoded in decode_files(paths[:100] + paths[101:], SIZE, cache, workers=2))


def test_the_cache_decodes_only_new_or_changed_files(tmp_path):
    cache = tmp_path / "cache"
    paths = make_files(tmp_path / "images", 3)
    first = [decode_file(path, SIZE, cache) for path in paths]
    assert [decoded.cached for decoded in first] == [False, False, False]
    # A copy under another name has the same bytes: a cache hit.
    copy = tmp_path / "images" / "copy of 0.png"
    copy.write_bytes(paths[0].read_bytes())
    write_image(paths[1], "RGB", (20, 24), seed=99)  # edited
    again = [decode_file(path, SIZE, cache) for path in [*paths, copy]]
    assert [decoded.cached for decoded in again] == [True, False, True, True]
    np.testing.assert_array_equal(again[3].image, first[0].image)
    assert not np.array_equal(again[1].image, first[1].image)
    # Another size is another entry.
    assert not decode_file(paths[0], (8, 8, 1), cache).cached


def test_a_torn_cache_entry_is_decoded_again(tmp_path):
    cache = tmp_path / "cache"
    (path,) = make_files(tmp_path / "images", 1)
    expected = decode_file(path, SIZE, cache).image
    (entry,) = cache.rglob("*.npy")
    entry.write_bytes(entry.read_bytes()[:50])
    decoded = decode_file(path, SIZE, cache)
    assert not decoded.cached and np.array_equal(decoded.image, expected)
    assert decode_file(path, SIZE, cache).cached


def test_a_file_that_is_not_an_image_is_an_error_with_the_reason(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    decoded = decode_file(broken, SIZE, tmp_path / "cache")
    assert decoded.image is None and decoded.error.startswith("cannot decode image")
    assert not list((tmp_path / "cache").rglob("*.npy"))


def test_a_gif_reads_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), color) for color in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    image = decode_file(tmp_path / "anim.gif", SIZE, None).image
    assert tuple(image[0, 0]) == (255, 0, 0)
