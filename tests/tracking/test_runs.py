import json

from imagepipe.tracking.provenance import orchestration_tags


def test_orchestration_tags_show_no_credentials(monkeypatch):
    overrides = ["data.source=https://u:s3cret@mirror.example/mnist/", "train_cnn.epochs=2"]
    monkeypatch.setenv("IMAGEPIPE_PARAM_OVERRIDES", json.dumps(overrides))
    monkeypatch.setenv("IMAGEPIPE_FLOW_RUN_ID", "5f1c0d2e")
    assert orchestration_tags() == {
        "prefect_flow_run_id": "5f1c0d2e",
        "param_overrides": '["data.source=https://***@mirror.example/mnist/", "train_cnn.epochs=2"]',
    }
