"""Publishing model cards: a version's facts gathered from its files and the MLflow registry,
then the card set as the version's description and logged to its training run as
`model_card/model_card.md` and `model_card/model_card.html` (pictures inlined).

Call these inside the training run (`resumed_run`), after the gate has tagged the version.
"""

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

import keras
from mlflow import MlflowClient

from imagepipe.core.files import read_json
from imagepipe.models.loading import load_keras
from imagepipe.tracking.card_render import Card, Picture, description, markdown, page
from imagepipe.tracking.card_sections import Architecture, CardError, Version
from imagepipe.tracking.cards import classifier_card, gan_card, most_confused

logger = logging.getLogger(__name__)
CARD_DIR = "model_card"
CHAMPION = "champion"
# MLflow's SQL stores keep a version's description in a VARCHAR(5000) column.
DESCRIPTION_LIMIT = 5000


def architecture_of(model: keras.Model) -> Architecture:
    """The model's layers by kind (nested models' layers counted, not the models), parameters, shapes."""
    kinds = Counter(type(layer).__name__ for layer in leaf_layers(model))
    trainable = sum(int(weight.numpy().size) for weight in model.trainable_weights)
    return Architecture(
        model.name,
        tuple(kinds.items()),
        int(model.count_params()),
        trainable,
        tuple(model.input_shape[1:]),
        tuple(model.output_shape[1:]),
    )


def leaf_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from leaf_layers(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            yield layer


def registered_version(model_dir: Path) -> Version:
    """The version a training stage registered (`<model_dir>/mlflow.json`), as the registry has it now."""
    reference = read_json(Path(model_dir) / "mlflow.json")
    client = MlflowClient()
    name, number = reference["registered_model"], str(reference["version"])
    model_version = client.get_model_version(name, number)
    run = client.get_run(reference["run_id"])
    return Version(
        registered_name=name,
        version=number,
        family=Path(model_dir).name,
        run_id=reference["run_id"],
        tags=dict(model_version.tags),
        champion=CHAMPION in (model_version.aliases or []),
        run_tags=dict(run.data.tags),
        params=dict(run.data.params),
    )


def publish_card(card: Card, version: Version, plots: Path) -> str:
    """Set the card as the version's description (pictures shown from the run's artifacts in the
    MLflow UI) and log the full card, Markdown and HTML, to the run; returns the description."""
    images = {}
    for picture in card.pictures:
        path = Path(plots) / Path(picture.path).name
        if not path.exists():
            raise CardError(f"{path} is missing: the model card shows it; run the stage that writes it")
        images[picture.path] = path.read_bytes()
    footer = f"Full card: the run's artifacts `{CARD_DIR}/model_card.md` and `{CARD_DIR}/model_card.html`.\n"
    text = description(card, lambda picture: ui_picture(picture, version.run_id), DESCRIPTION_LIMIT, footer)
    client = MlflowClient()
    client.update_model_version(version.registered_name, version.version, description=text)
    client.log_text(version.run_id, markdown(card, relative_picture), f"{CARD_DIR}/model_card.md")
    client.log_text(version.run_id, page(card, images), f"{CARD_DIR}/model_card.html")
    logger.info("model card of %s v%s published", version.registered_name, version.version)
    return text


def relative_picture(picture: Picture) -> str:
    """The picture as the card in `model_card/` sees it among the run's artifacts."""
    return f"![{picture.caption}](../{picture.path})\n\n*{picture.caption}*"


def ui_picture(picture: Picture, run_id: str) -> str:
    """The picture from the run's artifacts, through the MLflow UI's (and server's) `get-artifact`
    route, relative so that it also works under a static prefix; shown, or linked when too wide."""
    link = f"[{picture.caption}](get-artifact?path={quote(picture.path, safe='')}&run_uuid={run_id})"
    return f"!{link}" if picture.preview else f"{link} (opens the image)"


def publish_classifier_card(
    model_dir: Path,
    metrics_file: Path,
    validation_summary: Path,
    plots: Path,
    confidence: float,
    predictions: tuple[Sequence[str], Sequence[str]] | None = None,
) -> str:
    """The card of the classifier in model_dir (cnn, transfer): published; returns the description.
    predictions (actual, predicted class names) adds the most frequent mistakes to its limits."""
    version = registered_version(model_dir)
    architecture = architecture_of(load_keras(Path(model_dir) / "best.keras"))
    class_names = read_json(Path(model_dir) / "mlflow.json")["class_names"]
    card = classifier_card(
        version,
        architecture,
        class_names,
        read_json(metrics_file),
        read_json(validation_summary),
        confidence,
        most_confused(*predictions) if predictions else (),
        source=str(metrics_file),
    )
    return publish_card(card, version, plots)


def publish_gan_card(
    model_dir: Path,
    metrics_file: Path,
    validation_summary: Path,
    plots: Path,
    confidence: float,
    class_names: Sequence[str],
) -> str:
    """The card of the GAN generator in model_dir (class_names: the task's, those it was trained
    on): published; returns the description."""
    version = registered_version(model_dir)
    architecture = architecture_of(load_keras(Path(model_dir) / "best.keras"))
    metrics, validation = read_json(metrics_file), read_json(validation_summary)
    card = gan_card(version, architecture, class_names, metrics, validation, confidence, str(metrics_file))
    return publish_card(card, version, plots)
