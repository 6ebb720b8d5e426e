"""One capped training epoch of the transfer classifier on a processed split, read as the training
stages read it (in memory up to `inputs.cache_mb`, streamed past it). Run as its own process so
that its peak memory is its own: `python -m bench.transfer_epoch --data data/processed`.

The backbone's weights come from a file, as `train_transfer.weights` takes them on a host with
no internet: a randomly initialised network's weights saved to disk first (its cost per image
does not depend on the values).
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import keras

from imagepipe.core.params import load_params
from imagepipe.models.backbones import APPLICATIONS, build_backbone
from imagepipe.models.transfer import classifier, compile_with
from imagepipe.training.inputs import batches, load_split


def weights_file(name: str, input_size: int, directory: Path) -> Path:
    path = directory / f"{name}.weights.h5"
    APPLICATIONS[name].constructor(
        include_top=False, weights=None, input_shape=(input_size, input_size, 3)
    ).save_weights(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--backbone", default="inception_v3")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    params = load_params()
    split = load_split(args.data, "train")
    size = split.input_shape[0]
    section = params.train_transfer.model_copy(update={"input_size": size})
    keras.utils.set_random_seed(params.seed)
    with tempfile.TemporaryDirectory(prefix="bench-weights-") as scratch:
        backbone = build_backbone(args.backbone, str(weights_file(args.backbone, size, Path(scratch))), size, Path())
    model = classifier(backbone, split.input_shape, split.num_classes, section, frozen=False)
    compile_with(model, section.fine_tune_learning_rate)
    data = batches(split, args.batch_size, params.seed, shuffle=True, inputs=params.inputs).repeat()
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    images = args.steps * args.batch_size
    in_memory = split.shards.nbytes <= params.inputs.cache_mb * 2**20
    print(json.dumps({"seconds": seconds, "images": images, "images_per_s": images / seconds, "in_memory": in_memory}))


if __name__ == "__main__":
    main()
