import pytest

from stages.common.params import ParamsError, load_params, parse_params


def test_project_params_load():
    params = load_params("params.yaml")
    assert params.data.dataset == "fashion_mnist"
    assert params.validation.max_kl_divergence > 0


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("data", "dataset", "cifar10", "data.dataset: Input should be 'fashion_mnist', 'mnist', 'digits' or 'image_folder'"),
        ("data", "datset", "mnist", "data.datset: unknown key; allowed keys here: dataset, source,"),
        ("data", "max_train_images", 0, "data.max_train_images: Input should be greater than 0"),
        ("data", "max_test_images", "100", "data.max_test_images"),
        ("data", "test_fraction", 1.5, "data.test_fraction: Input should be less than 1"),
        ("data", "skip_unreadable", "yes", "data.skip_unreadable: Input should be a valid boolean"),
        ("image", "height", "28", "image.height: Input should be a valid integer (got '28')"),
        ("image", "channels", 2, "image.channels: Input should be 1 or 3"),
        ("validate", "max_kl_divergence", -1.0, "validate.max_kl_divergence: Input should be greater than 0"),
        ("validate", "min_class_share_ratio", 2.0, "validate.min_class_share_ratio: Input should be less than or equal to 1"),
        ("preprocess", "dtype", "int8", "preprocess.dtype: Input should be 'float16' or 'float32'"),
        ("preprocess", "validation_split", 0, "preprocess.validation_split: Input should be greater than 0"),
    ],
)
def test_bad_value_names_key_and_allowed(raw_params, section, key, value, expected):
    raw_params[section][key] = value
    with pytest.raises(ParamsError) as caught:
        parse_params(raw_params)
    assert expected in str(caught.value)


def test_missing_key_and_unknown_section(raw_params):
    del raw_params["seed"]
    raw_params["trainn"] = {}
    with pytest.raises(ParamsError) as caught:
        parse_params(raw_params)
    message = str(caught.value)
    assert "seed: missing" in message
    assert "trainn: unknown key; allowed keys here: seed, accelerator, image, data, validate, preprocess, train_cnn" in message


def test_unreadable_file(tmp_path):
    (tmp_path / "params.yaml").write_text("data: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "missing.yaml")
