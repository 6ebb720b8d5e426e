import json
import re

import keras
import mlflow
import pytest
from mlflow import MlflowClient

from imagepipe.tracking.card_publish import CARD_DIR, DESCRIPTION_LIMIT, publish_classifier_card
from imagepipe.tracking.card_render import Bullets, Card, Picture, Section, description, markdown, page
from imagepipe.tracking.card_sections import Architecture, CardError, Version
from imagepipe.tracking.cards import classifier_card, gan_card, most_confused
from imagepipe.tracking.runs import resumed_run
from imagepipe.tracking.store import configure_tracking

CLASSES = ["cat", "dog", "a|b <c>"]
PNG = b"\x89PNG\r\n\x1a\n-tiny"


def version(**overrides) -> Version:
    values = {
        "registered_name": "pets-cnn",
        "version": "3",
        "family": "cnn",
        "run_id": "abc123",
        "tags": {
            "task": "pets",
            "test_fingerprint": "f00d",
            "champion_decision": "promoted to champion: gain +0.0500 [+0.0200, +0.0800] above the margin 0",
            "gate_gain": "0.05",
            "gate_gain_ci": "[0.02, 0.08]",
            "gate_p_value": "0.0012",
        },
        "champion": True,
        "run_tags": {
            "mlflow.source.git.commit": "deadbeef",
            "git_dirty": "true",
            "dvc_hash:data/processed": "6a63.dir",
            "accelerator.device": "cpu",
        },
        "params": {"train_cnn.epochs": "12", "seed": "42"},
    }
    return Version(**(values | overrides))


ARCHITECTURE = Architecture("cnn", (("Rescaling", 1), ("Conv2D", 2), ("Dense", 1)), 1234, 1200, (8, 8, 1), (3,))
VALIDATION = {
    "success": True,
    "failures": [],
    "class_counts": {"train": {name: 10 for name in CLASSES}, "test": {name: 5 for name in CLASSES}},
}


def metrics(**overrides) -> dict:
    per_class = {
        "cat": {"precision": 0.9, "recall": 0.8, "f1": 0.847, "support": 5},
        "dog": {"precision": 0.6, "recall": 0.7, "f1": 0.646, "support": 5},
        "a|b <c>": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 5},
    }
    values = {
        "test_accuracy": 0.8,
        "test_accuracy_ci": [0.6, 0.9333],
        "test_macro_f1": 0.831,
        "test_loss": 0.5,
        "num_test_images": 15,
        "per_class": per_class,
    }
    return values | overrides


def card_markdown(**metric_overrides) -> str:
    card = classifier_card(
        version(), ARCHITECTURE, CLASSES, metrics(**metric_overrides), VALIDATION, 0.95, [("dog", "cat", 2)]
    )
    return markdown(card, lambda picture: f"[{picture.caption}]({picture.path})")


def test_classifier_card_states_model_task_metrics_gate_lineage_and_limits():
    text = card_markdown()
    for expected in (
        "# Model card: pets-cnn v3",
        "Registered model `pets-cnn`, version 3: an image classifier trained from scratch",
        "`cnn`: 4 layers (Rescaling, Conv2D ×2, Dense); 1,234 parameters, 1,200 of them trainable",
        "Trained on 30 labelled images, as few as 10 of one class (cat).",
        "raw pixels 0..255 (scaled inside the model), float32 shaped (n, 8, 8, 1)",
        "in the order cat, dog, a\\|b \\<c\\>",
        "Task: `pets`",
        "Test set: 15 images, fingerprint `f00d`",
        "| test accuracy | 80.00% | 60.00% – 93.33% |",
        "Held the `champion` alias when this card was written: **yes**",
        "Gain over the champion (positive: better): +0.0500 accuracy (95% interval [+0.0200, +0.0800])",
        "McNemar's exact test, p = 0.0012",
        "| dog | 0.600 | 0.700 | 0.646 | 5 |",
        "| a\\|b \\<c\\> | 1.000 | 1.000 | 1.000 | 5 |",
        "[Confusion matrix on the test set](plots/confusion_matrix.png)",
        "Weakest classes (F1): dog 0.646, cat 0.847, a\\|b \\<c\\> 1.000",
        "Often mistaken: dog predicted as cat (2 test images)",
        "interval is 33.33 points wide",
        "Expects images of 8 × 8 × 1",
        "Trained on cpu without TensorFlow's op determinism",
        "Git commit: `deadbeef` (with uncommitted changes)",
        "DVC hash of `data/processed`: `6a63.dir`",
        "Great Expectations validation: **passed**; images: test 15, train 30",
        "| `train_cnn.epochs` | `12` |",
    ):
        assert expected in text, expected
    # The per-class rows follow the model's class order, not the file's.
    assert text.index("| cat | 0.900") < text.index("| dog | 0.600") < text.index("| a\\|b")


def test_a_card_without_the_accuracy_interval_or_a_per_class_score_is_refused():
    values = metrics()
    del values["test_accuracy_ci"]
    with pytest.raises(CardError, match=r"metrics/cnn.json has no test_accuracy_ci"):
        classifier_card(version(), ARCHITECTURE, CLASSES, values, VALIDATION, 0.95, source="metrics/cnn.json")
    values = metrics()
    del values["per_class"]["dog"]["f1"]
    with pytest.raises(CardError, match=r"per_class 'dog'\) lacks f1"):
        classifier_card(version(), ARCHITECTURE, CLASSES, values, VALIDATION, 0.95)
    with pytest.raises(CardError, match=r"test_accuracy_ci must be \[low, high\]"):
        classifier_card(version(), ARCHITECTURE, CLASSES, metrics(test_accuracy_ci=[0.9, 0.6]), VALIDATION, 0.95)


def test_a_version_the_gate_did_not_compare_says_so():
    plain = version(
        tags={"champion_decision": "not promoted to champion: its data did not pass validation"}, champion=False
    )
    text = markdown(
        classifier_card(plain, ARCHITECTURE, CLASSES, metrics(), VALIDATION | {"success": False}, 0.9),
        lambda picture: picture.path,
    )
    assert "its data did not pass validation" in text and "**no**" in text and "Gain over" not in text
    assert "fingerprint not recorded" in text and "Great Expectations validation: **failed**" in text
    # Without a task tag, the task is the registered name's <task>-<family> prefix.
    assert "Task: `pets`" in text


def test_html_page_inlines_pictures_and_escapes_text():
    card = classifier_card(version(), ARCHITECTURE, CLASSES, metrics(), VALIDATION, 0.95)
    html = page(card, {"plots/confusion_matrix.png": PNG, "plots/gt_vs_pr.png": PNG})
    assert html.count('src="data:image/png;base64,iVBORw0KGgotdGlueQ=="') == 2
    assert "<td>a|b &lt;c&gt;</td>" in html and "<c>" not in html
    assert "<code>pets-cnn</code>" in html and "<strong>yes</strong>" in html


def test_description_fits_the_limit_leaving_out_optional_sections():
    names = [f"class number {index}" for index in range(300)]
    per_class = {name: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 10} for name in names}
    validation = {"success": True, "class_counts": {"train": dict.fromkeys(names, 50)}}
    card = classifier_card(
        version(), ARCHITECTURE, names, metrics(per_class=per_class, num_test_images=3000), validation, 0.95
    )
    text = description(card, lambda picture: f"![x]({picture.path})", DESCRIPTION_LIMIT, "Full card: elsewhere.\n")
    assert len(text) <= DESCRIPTION_LIMIT and text.endswith("Full card: elsewhere.\n")
    assert "## Known limits" in text and "## Data lineage" in text and "## Per-class results" not in text


def test_description_cuts_a_card_too_long_without_optional_sections_at_a_line_break():
    card = Card("Model card: x v1", (Section("Known limits", (Bullets(tuple(f"limit {i}" for i in range(100))),)),))
    text = description(card, lambda picture: picture.path, 300, "Full card: elsewhere.\n")
    assert len(text) <= 300 and text.endswith("\n…\n\nFull card: elsewhere.\n") and "- limit 1\n" in text


def test_gan_card_states_fid_with_its_interval_and_samples():
    architecture = Architecture("generator", (("Dense", 1), ("Conv2DTranspose", 3)), 900, 880, (64,), (28, 28, 1))
    card = gan_card(
        version(family="gan", tags={"champion_decision": "promoted"}),
        architecture,
        CLASSES,
        {"test_fid": 12.77, "test_fid_ci": [11.5, 14.0], "fid_samples": 1000, "feature_extractor": "cnn features"},
        VALIDATION,
        0.95,
    )
    text = markdown(card, lambda picture: picture.path)
    assert "| test FID (lower is better) | 12.77 | 11.50 – 14.00 |" in text
    assert "noise, float32 shaped (n, 64)" in text and "pixels 0..255 shaped (n, 28, 28, 1)" in text
    assert (
        "plots/samples.png" in text
        and "Per-class" not in text
        and "interval is 2.50 wide" in text
        and "Training params" in text
    )
    with pytest.raises(CardError, match="has no test_fid_ci"):
        gan_card(
            version(), architecture, CLASSES, {"test_fid": 1, "fid_samples": 1, "feature_extractor": "x"}, {}, 0.95
        )


def test_most_confused_counts_mistakes_only():
    assert most_confused(["a", "a", "a", "b"], ["b", "b", "a", "a"]) == [("a", "b", 2), ("b", "a", 1)]


def test_card_is_on_the_version_and_its_run(mlflow_store, tmp_path):
    """A real MLflow sqlite store: the published card is the version's description and the run's artifacts."""
    model_dir, plots = tmp_path / "models" / "cnn", tmp_path / "plots" / "cnn"
    model_dir.mkdir(parents=True)
    plots.mkdir(parents=True)
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs)))
    model.save(model_dir / "best.keras")
    configure_tracking()
    with mlflow.start_run() as run:
        mlflow.set_tags(
            {"mlflow.source.git.commit": "deadbeef", "git_dirty": "false", "dvc_hash:data/processed": "6a63.dir"}
        )
        mlflow.log_params({"seed": 42})
        mlflow.log_text("stand-in", "model/MLmodel")
    client = MlflowClient()
    client.create_registered_model("pets-cnn")
    registered = client.create_model_version("pets-cnn", f"runs:/{run.info.run_id}/model", run.info.run_id)
    client.set_model_version_tag("pets-cnn", registered.version, "champion_decision", "promoted to champion: first")
    client.set_registered_model_alias("pets-cnn", "champion", registered.version)
    reference = {"run_id": run.info.run_id, "registered_model": "pets-cnn", "version": registered.version}
    (model_dir / "mlflow.json").write_text(json.dumps(reference | {"class_names": CLASSES}))
    (tmp_path / "metrics.json").write_text(json.dumps(metrics()))
    (tmp_path / "summary.json").write_text(json.dumps(VALIDATION))
    for name in ("confusion_matrix.png", "gt_vs_pr.png"):
        (plots / name).write_bytes(PNG)
    with resumed_run(model_dir / "mlflow.json"):
        publish_classifier_card(model_dir, tmp_path / "metrics.json", tmp_path / "summary.json", plots, 0.95)
    text = client.get_model_version("pets-cnn", registered.version).description
    assert (
        text.startswith("# Model card: pets-cnn v1")
        and "Held the `champion` alias when this card was written: **yes**" in text
    )
    assert re.search(
        r"!\[Confusion matrix on the test set\]\(get-artifact\?path=plots%2Fconfusion_matrix.png&run_uuid=", text
    )
    assert (
        "\n[Ground truth vs prediction on test images (mistakes in red)](get-artifact?path=plots%2Fgt_vs_pr.png" in text
    )
    files = {item.path for item in client.list_artifacts(run.info.run_id, CARD_DIR)}
    assert files == {f"{CARD_DIR}/model_card.md", f"{CARD_DIR}/model_card.html"}
    card = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/{CARD_DIR}/model_card.md")
    assert "![Confusion matrix on the test set](../plots/confusion_matrix.png)" in card
    assert "Git commit: `deadbeef`\n" in card  # read from MLflow's own tag on the run
    assert "base64," in mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/{CARD_DIR}/model_card.html")
    assert client.get_run(run.info.run_id).info.status == "FINISHED"


def test_publishing_without_a_plot_fails_before_touching_the_version(mlflow_store, tmp_path):
    card = classifier_card(version(), ARCHITECTURE, CLASSES, metrics(), VALIDATION, 0.95)
    assert isinstance(card.pictures[0], Picture)
    from imagepipe.tracking.card_publish import publish_card

    with pytest.raises(CardError, match="confusion_matrix.png is missing"):
        publish_card(card, version(), tmp_path)
