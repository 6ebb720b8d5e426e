import shutil
from pathlib import Path

import pytest
import yaml

from imagepipe.orchestration.param_overrides import apply

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workspace(tmp_path) -> Path:
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def test_overrides_change_params_yaml_as_dvc_exp_run_does(workspace):
    apply(workspace, ["train_cnn.epochs=3", "data.dataset=digits"])
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    assert params["train_cnn"]["epochs"] == 3 and params["data"]["dataset"] == "digits"
    assert (workspace / "params.yaml").read_text().count("#") == (ROOT / "params.yaml").read_text().count("#")


@pytest.mark.parametrize(
    "override, message",
    [
        ("train_cnn.epochs=0", "train_cnn.epochs: Input should be greater than 0"),
        ("data.dataset=cifar10", "data.dataset: Input should be 'fashion_mnist', 'mnist', 'digits' or 'image_folder'"),
        ("train_cnn.epochz=3", "train_cnn.epochz"),
    ],
)
def test_a_bad_override_is_refused_and_params_yaml_left_as_it_was(workspace, override, message):
    before = (workspace / "params.yaml").read_text()
    with pytest.raises(ValueError, match="rejected, params.yaml left as it was") as error:
        apply(workspace, [override])
    assert message in str(error.value)
    assert (workspace / "params.yaml").read_text() == before
