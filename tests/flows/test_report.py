import base64

from imagepipe.orchestration.report import header, metrics_table, mlflow_ui, pictures


def test_metrics_table_links_each_model_to_its_mlflow_run_and_version():
    metrics = {"metrics/cnn.json": {"test_accuracy": 0.91234, "per_class": {"Bag": {"f1": 1.0}}, "num_test_images": 10}}
    models = {"cnn": {"run_id": "0b836d7aa6974f0a", "registered_model": "cnn", "version": "2"}}
    table = metrics_table(metrics, models, "http://127.0.0.1:5001")
    assert table.splitlines()[-1] == (
        "| `metrics/cnn.json` | [0b836d7a](http://127.0.0.1:5001/#/runs/0b836d7aa6974f0a) "
        "| [cnn v2](http://127.0.0.1:5001/#/models/cnn/versions/2) | num_test_images = 10, test_accuracy = 0.9123 |"
    )
    assert "per_class" not in table


def test_a_metrics_file_without_a_model_has_no_links():
    table = metrics_table({"metrics/other.json": {"score": 1}}, {}, "http://127.0.0.1:5001")
    assert table.splitlines()[-1] == "| `metrics/other.json` |  |  | score = 1 |"


def test_links_go_to_the_tracking_server_or_the_local_mlflow_ui(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5002/")
    assert mlflow_ui() == "http://127.0.0.1:5002"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    assert mlflow_ui() == "http://127.0.0.1:5000"


def test_links_and_overrides_show_no_credentials(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://u:s3cret@mlflow.example:5000/")
    assert mlflow_ui() == "https://***@mlflow.example:5000"
    overrides = ["data.source=http://u:s3cret@mirror.example/mnist/", "train_cnn.epochs=2"]
    assert header("nightly", overrides) == (
        "# Pipeline run `nightly`\n\n"
        "Params overrides: `data.source=http://***@mirror.example/mnist/`, `train_cnn.epochs=2`\n\n"
    )
    assert header("nightly", []).endswith("Params overrides: none\n\n")


def test_a_familys_pictures_are_inlined_in_name_order(tmp_path):
    (tmp_path / "segmentation.png").write_bytes(b"\x89PNG mask")
    (tmp_path / "anomaly_scores.png").write_bytes(b"\x89PNG scores")
    (tmp_path / "notes.txt").write_text("not a picture")
    page = pictures(tmp_path, "unet")
    encoded = base64.b64encode(b"\x89PNG mask").decode()
    assert page.startswith("# Pictures: unet\n\n## anomaly_scores\n\n")
    assert f"## segmentation\n\n![segmentation of unet](data:image/png;base64,{encoded})" in page
    assert "notes" not in page
