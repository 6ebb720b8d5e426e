"""Transfer: training the head on frozen-backbone features computed once (what train_transfer
does) against running the frozen backbone in every epoch (the course's recipe)."""

import tempfile
import time
from pathlib import Path

import keras

from imagepipe.core.sections import TrainTransferParams
from imagepipe.models.backbones import build_backbone
from imagepipe.models.transfer import classifier, compile_with, cut_at, head_of
from imagepipe.training.transfer import frozen_features, load_task


def head_training(
    data_dir: Path, backbone_model: Path, params: TrainTransferParams, seed: int, backbones: tuple[str, ...]
) -> list[dict]:
    """Seconds to train the head for params.epochs, both ways, per backbone (random weights:
    the cost of a forward pass does not depend on them)."""
    data = load_task(data_dir, params.batch_size, seed)
    results = []
    for name in backbones:
        seconds = {}
        for way in ("every_epoch", "cached"):
            keras.utils.set_random_seed(seed)
            # The configured cut applies to the configured backbone; another one is timed whole.
            cut_layer = params.cut_layer if name == params.backbone else None
            backbone = cut_at(build_backbone(name, "none", params.input_size, backbone_model), cut_layer)
            model = classifier(backbone, data["input_shape"], data["num_classes"], params, frozen=True)
            backbone.base.trainable = False
            start = time.perf_counter()
            if way == "cached":
                features = Path(tempfile.mkdtemp(prefix="bench-features-")) / "features"
                head, batches = (
                    head_of(model, backbone),
                    frozen_features(backbone, data, features, params.batch_size, seed),
                )
            else:
                head, batches = model, data
            compile_with(head, params.learning_rate)
            history = head.fit(batches["train"], validation_data=batches["val"], epochs=params.epochs, verbose=0)
            seconds[way] = time.perf_counter() - start
            seconds[f"{way}_val_accuracy"] = max(history.history["val_accuracy"])
        results.append(
            {"backbone": name, "epochs": params.epochs, "train_images": data["splits"]["train"].count, **seconds}
        )
    return results
