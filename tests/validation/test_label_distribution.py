import json
import re

import numpy as np
import pytest

from imagepipe.validation.expectations import image_table
from imagepipe.validation.label_distribution import chart_page, chart_spec, label_distribution
from imagepipe.validation.runner import validate_dataset
from tests.helpers.data import balanced_labels

# Class names as users have them: spaces, punctuation, unicode, and one that would end a script.
NAMES = ["T-shirt/top", "Ankle boot", "banana_ü", "cherry (red)", "猫", "</script><b>x</b>"]


def skewed(per_class: int) -> np.ndarray:
    """Labels of NAMES where class 0 has 4x the images of each other class."""
    return np.r_[np.repeat(np.arange(len(NAMES)), per_class), np.zeros(3 * per_class, np.int64)]


def test_shares_of_each_split_sum_to_one_with_the_expectations_band(make_params):
    checks = make_params().validation
    labels = {"train": balanced_labels(len(NAMES), 30), "test": skewed(10)}
    table = label_distribution(labels, NAMES, checks)
    assert list(table.columns) == ["split", "class", "count", "share", "lower", "upper", "within_band"]
    assert table.groupby("split", sort=False)["share"].sum().to_dict() == pytest.approx({"train": 1.0, "test": 1.0})
    assert table["class"].tolist() == NAMES * 2
    assert (table["lower"] == checks.min_class_share_ratio / len(NAMES)).all()
    assert (table["upper"] == checks.max_class_share_ratio / len(NAMES)).all()
    test = table[table["split"] == "test"].set_index("class")
    # 40 of 90 images, 0.44 > 2/6 = 0.33; the other classes 10 of 90, 0.11 >= 0.5/6 = 0.083.
    assert test.loc["T-shirt/top", ["count", "share"]].tolist() == [40, pytest.approx(40 / 90)]
    assert test["within_band"].tolist() == [False] + [True] * 5
    assert table[table["split"] == "train"]["within_band"].all()


def test_labels_naming_no_class_count_in_the_split_but_in_no_class(make_params):
    labels = balanced_labels(len(NAMES), 10)
    labels[:3] = [-1, len(NAMES), 99]
    table = label_distribution({"train": labels}, NAMES, make_params().validation)
    assert table["count"].sum() == len(labels) - 3
    assert table["share"].sum() == pytest.approx((len(labels) - 3) / len(labels))


def test_band_flags_exactly_the_classes_the_expectation_fails(make_params):
    """The chart's verdict per class is GX's: a class outside the band is one the class-share
    expectation names, and no other."""
    params = make_params(validate={"max_kl_divergence": 10.0})
    rng = np.random.default_rng(0)
    labels = {"train": skewed(20), "test": balanced_labels(len(NAMES), 20)}
    tables = {name: image_table(rng.integers(0, 256, (len(v), 28, 28, 1)), v) for name, v in labels.items()}
    report = validate_dataset(tables, NAMES, params.validation, params.image)
    (failure,) = [line for line in report.failures if "share is" in line]
    table = label_distribution(labels, NAMES, params.validation)
    outside = table[~table["within_band"]]
    assert outside[["split", "class"]].values.tolist() == [["train", "T-shirt/top"]]
    assert failure.startswith("train_classes:") and "1 of 6 rows fail (T-shirt/top=" in failure


def test_chart_page_escapes_class_names_and_embeds_every_row(make_params):
    checks = make_params().validation
    table = label_distribution({"train": skewed(5), "test": skewed(5)}, NAMES, checks)
    page = chart_page(table, checks)
    assert "</script><b>" not in page and "&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in page
    spec = json.loads(re.search(r"vegaEmbed\('#chart', (\{.*\}), \{actions", page).group(1))
    assert spec == json.loads(json.dumps(chart_spec(table)))
    bars = spec["layer"][1]["data"]["values"]
    assert [(row["split"], row["class"]) for row in bars] == [(s, name) for s in ("train", "test") for name in NAMES]
    assert spec["layer"][0]["data"]["values"] == [{"lower": pytest.approx(0.5 / 6), "upper": pytest.approx(2 / 6)}]
    assert "0.5 to 2 times the uniform share 1/6, so 8.33% to 33.33%" in page
    assert page.count('class="table-danger"') == 2  # T-shirt/top in both splits
