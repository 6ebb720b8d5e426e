import hashlib
import json

import numpy as np
import pytest

from imagepipe.data.shards import (
    MANIFEST,
    ShardError,
    ShardWriter,
    file_sha256,
    open_split,
    verify,
    write_manifest,
    write_split,
)


def images_and_labels(count: int, shape=(5, 4, 3), seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, *shape), dtype=np.uint8), rng.integers(0, 7, count).astype(np.int64)


def test_shards_are_cut_by_bytes_and_read_back_in_any_order(tmp_path):
    images, labels = images_and_labels(103)
    per_image = images[0].nbytes
    batches = ((images[i : i + 17], labels[i : i + 17]) for i in range(0, 103, 17))
    entry = write_split(tmp_path, "train", batches, images.shape[1:], shard_bytes=10 * per_image)
    write_manifest(tmp_path, {"train": entry})
    assert entry["count"] == 103 and [shard["count"] for shard in entry["shards"]] == [10] * 10 + [3]
    split = open_split(tmp_path, "train")
    np.testing.assert_array_equal(split.labels(), labels)
    np.testing.assert_array_equal(np.concatenate([pixels for pixels, _ in split.iter_shards()]), images)
    order = np.random.default_rng(1).permutation(103)[:40]  # across shards, out of order
    np.testing.assert_array_equal(split.read(order), images[order])
    assert split.nbytes == images.nbytes
    with pytest.raises(IndexError):
        split.read(np.array([103]))


def test_the_manifest_records_each_shards_hash_and_where_its_pixels_start(tmp_path):
    images, labels = images_and_labels(3)
    writer = ShardWriter(tmp_path, "test", images.shape[1:])
    writer.add(images, labels)
    shard = writer.close()["shards"][0]
    raw = (tmp_path / shard["images"]).read_bytes()
    assert shard["sha256"] == hashlib.sha256(raw).hexdigest()
    assert raw[shard["images_offset"] :] == images.tobytes()
    assert np.frombuffer((tmp_path / shard["labels"]).read_bytes()[shard["labels_offset"] :], np.int64).tolist() == (
        labels.tolist()
    )


def test_a_files_hash_is_the_sha256_of_all_its_bytes(tmp_path):
    """Past one read's block too: the file is read in pieces, not whole."""
    path = tmp_path / "big"
    path.write_bytes(np.random.default_rng(0).bytes(3 * 2**20 + 7))
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_batch_of_another_shape_is_refused(tmp_path):
    writer = ShardWriter(tmp_path, "train", (5, 4, 3))
    with pytest.raises(ShardError, match=r"train: images of shape \(5, 4, 1\) in a split of \(5, 4, 3\)"):
        writer.add(np.zeros((2, 5, 4, 1), np.uint8), np.zeros(2, np.int64))


def test_verify_finds_a_changed_or_missing_shard(tmp_path):
    images, labels = images_and_labels(20)
    entry = write_split(tmp_path, "train", iter([(images, labels)]), images.shape[1:], shard_bytes=images[0].nbytes * 8)
    write_manifest(tmp_path, {"train": entry})
    verify(tmp_path)
    second = tmp_path / entry["shards"][1]["images"]
    second.write_bytes(second.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ShardError, match="train-00001.npy: missing or not the shard"):
        verify(tmp_path)


def test_a_directory_without_a_manifest_or_of_another_version_says_what_to_do(tmp_path):
    with pytest.raises(ShardError, match=r"shards.json is missing: .* run `dvc repro` to rebuild it"):
        open_split(tmp_path, "train")
    (tmp_path / MANIFEST).write_text(json.dumps({"version": 99, "splits": {}}))
    with pytest.raises(ShardError, match="shard format version 99, this code reads 1"):
        open_split(tmp_path, "train")
    write_manifest(tmp_path, {})
    with pytest.raises(ShardError, match="has no split 'val'"):
        open_split(tmp_path, "val")
