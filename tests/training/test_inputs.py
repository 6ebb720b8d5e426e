import numpy as np
import pytest

from imagepipe.core.sections import InputsParams
from imagepipe.data.preprocessing import write_encoding
from imagepipe.data.shards import write_manifest, write_split
from imagepipe.training import inputs
from imagepipe.training.inputs import batches, load_split, predict

SHAPE = (6, 5, 3)
# 1 MiB of cache: these splits (a few KB) fit; 0: every split streams from its shards.
IN_MEMORY, STREAMED = InputsParams(cache_mb=1, shuffle_buffer_mb=1), InputsParams(cache_mb=0, shuffle_buffer_mb=1)


@pytest.fixture
def processed(tmp_path):
    """A processed directory with a 70-image train split in 8 shards, and its encoding."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (70, *SHAPE), dtype=np.uint8)
    labels = rng.integers(0, 4, 70).astype(np.int64)
    entry = write_split(tmp_path, "train", iter([(images, labels)]), SHAPE, shard_bytes=9 * images[0].nbytes)
    write_manifest(tmp_path, {"train": entry})
    write_encoding(tmp_path, 4)
    return tmp_path, images, labels


def collect(dataset):
    pairs = list(dataset.as_numpy_iterator())
    return np.concatenate([x for x, _ in pairs]), np.concatenate([y for _, y in pairs])


def test_streamed_and_in_memory_batches_are_the_same_normalised_one_hot_data(processed):
    directory, images, labels = processed
    split = load_split(directory, "train")
    assert len(split.shards.shards) == 8
    for budget in (IN_MEMORY, STREAMED):
        x, y = collect(batches(split, 16, seed=0, inputs=budget))
        assert x.dtype == np.float32 and y.dtype == np.float32
        np.testing.assert_allclose(x, images / 255, rtol=1e-6)  # unshuffled: in order
        np.testing.assert_array_equal(y.argmax(axis=1), labels)


def test_shuffled_streaming_sees_every_image_once_an_epoch_in_a_new_order(processed):
    directory, images, _ = processed
    dataset = batches(load_split(directory, "train"), 16, seed=0, shuffle=True, inputs=STREAMED)
    epochs = [collect(dataset)[0] for _ in range(2)]
    for x in epochs:
        assert sorted(map(bytes, np.rint(x * 255).astype(np.uint8))) == sorted(map(bytes, images))
    assert not np.array_equal(epochs[0], epochs[1])


def test_a_split_over_the_budget_is_never_loaded_whole(processed, monkeypatch):
    directory, _, _ = processed
    split = load_split(directory, "train")

    def refuse(*arguments):
        raise AssertionError("a split over inputs.cache_mb was read into memory")

    monkeypatch.setattr(inputs, "_in_memory", refuse)
    x, _ = collect(batches(split, 16, seed=0, shuffle=True, inputs=STREAMED))
    assert len(x) == 70
    with pytest.raises(AssertionError, match="read into memory"):
        batches(split, 16, seed=0, inputs=IN_MEMORY)


def test_predict_streams_in_order(processed):
    import keras

    directory, images, _ = processed
    pixels = keras.Input(SHAPE)
    model = keras.Model(pixels, keras.ops.mean(pixels, axis=(1, 2, 3)))
    np.testing.assert_allclose(
        predict(model, load_split(directory, "train"), 16), (images / 255).mean(axis=(1, 2, 3)), rtol=1e-5
    )
