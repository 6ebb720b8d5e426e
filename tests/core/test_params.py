import copy

import pytest
import yaml

from imagepipe.core.params import ParamsError, load_params, parse_params
from tests.helpers.data import ROOT

# Positive integers that are not counts: any seed is allowed, channels is 1 or 3.
# train_vae.latent_dim has a floor of 2 (the latent traversal walks two dimensions), and so has
# train_transfer.seeds (a mean ± sd needs two): tested apart.
NOT_COUNTS = {"seed", "image.channels", "train_vae.latent_dim", "train_transfer.seeds"}
# Counts whose zero means "none of it": no warm-up, no fine-tuning phase or no layers unfrozen.
ZERO_ALLOWED = {
    "inputs.cache_mb",
    "train_cnn.warmup_epochs",
    "train_transfer.fine_tune_epochs",
    "train_transfer.fine_tune_layers",
}
# Counts that default to null (no cap) but must be positive when set.
OPTIONAL_COUNTS = ["data.max_train_images", "data.max_test_images"]


def leaves(tree: dict, prefix: str = "") -> dict[str, object]:
    """Every non-mapping value of tree, by its dotted key."""
    found = {}
    for key, value in tree.items():
        found |= leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value}
    return found


DEFAULTS = leaves(yaml.safe_load((ROOT / "params.yaml").read_text()))
COUNTS = [key for key, value in DEFAULTS.items() if type(value) is int and value > 0 and key not in NOT_COUNTS]


def refusal(raw: dict, key: str, value: object) -> str:
    """The ParamsError message for raw with key set to value."""
    *parents, last = key.split(".")
    section = raw
    for parent in parents:
        section = section[parent]
    section[last] = value
    with pytest.raises(ParamsError) as caught:
        parse_params(raw)
    return str(caught.value)


def wrong_types(default: object) -> list[object]:
    """Values of another type than default's (a count refuses a float, a float refuses a bool;
    a list, such as the families, refuses a string and a mapping)."""
    if isinstance(default, list):
        return ["rnn", {"value": 1}, 1]
    others = {bool: [1, "true"], int: ["3", True, 1.5], float: ["0.1", True], str: [1, True]}
    return [[1], {"value": 1}] + others.get(type(default), [True, 1.5])


def test_project_params_load():
    params = load_params("params.yaml")
    assert params.data.dataset == "fashion_mnist"
    assert params.validation.max_kl_divergence == DEFAULTS["validate.max_kl_divergence"]


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        (
            "data",
            "dataset",
            "cifar10",
            "data.dataset: Input should be 'fashion_mnist', 'mnist', 'digits' or 'image_folder'",
        ),
        ("data", "datset", "mnist", "data.datset: unknown key; allowed keys here: dataset, source,"),
        ("data", "max_train_images", 0, "data.max_train_images: Input should be greater than 0"),
        ("data", "max_test_images", "100", "data.max_test_images"),
        ("data", "test_fraction", 1.5, "data.test_fraction: Input should be less than 1"),
        ("data", "skip_unreadable", "yes", "data.skip_unreadable: Input should be a valid boolean"),
        ("image", "height", "28", "image.height: Input should be a valid integer (got '28')"),
        ("image", "channels", 2, "image.channels: Input should be 1 or 3"),
        ("validate", "max_kl_divergence", -1.0, "validate.max_kl_divergence: Input should be greater than 0"),
        (
            "validate",
            "min_class_share_ratio",
            2.0,
            "validate.min_class_share_ratio: Input should be less than or equal to 1",
        ),
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
    assert (
        "trainn: unknown key; allowed keys here: seed, accelerator, inputs, image, data, validate, preprocess"
        in message
    )


def test_unreadable_file(tmp_path):
    (tmp_path / "params.yaml").write_text("data: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "missing.yaml")


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_every_key_refuses_a_value_of_the_wrong_type(raw_params, key):
    for value in wrong_types(DEFAULTS[key]):
        assert f"\n  {key}: " in refusal(copy.deepcopy(raw_params), key, value), value


@pytest.mark.parametrize("key", sorted(set(COUNTS) - ZERO_ALLOWED) + OPTIONAL_COUNTS)
def test_every_count_refuses_zero_and_negative(raw_params, key):
    for value in (0, -1):
        assert f"\n  {key}: Input should be greater than 0" in refusal(copy.deepcopy(raw_params), key, value)


@pytest.mark.parametrize("key", sorted(ZERO_ALLOWED))
def test_counts_that_may_be_zero_refuse_negative(raw_params, key):
    assert COUNTS.count(key) == 1
    assert f"\n  {key}: Input should be greater than or equal to 0" in refusal(raw_params, key, -1)


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        ("train_cnn.architecture", "'course' or 'batchnorm'"),
        ("train_transfer.backbone", "'pipeline_cnn', 'inception_v3', 'mobilenet_v2', 'efficientnet_b0' or 'resnet50'"),
    ],
)
def test_unknown_architecture_or_backbone_names_the_allowed(raw_params, key, allowed):
    assert f"{key}: Input should be {allowed} (got 'vgg16')" in refusal(raw_params, key, "vgg16")


def test_a_family_in_the_wrong_list_is_refused_with_the_families_allowed(raw_params):
    message = refusal(raw_params, "families.scenes", ["unet", "rnn"])
    assert "\n  families.scenes.1: Input should be 'unet' or 'detector' (got 'rnn')" in message


def test_the_transfer_comparison_needs_two_seeds_for_its_spread(raw_params):
    assert "\n  train_transfer.seeds: Input should be greater than or equal to 2" in refusal(
        raw_params, "train_transfer.seeds", 1
    )


def test_the_vae_needs_two_latent_dimensions_for_its_traversal(raw_params):
    assert "\n  train_vae.latent_dim: Input should be greater than or equal to 2" in refusal(
        raw_params, "train_vae.latent_dim", 1
    )
