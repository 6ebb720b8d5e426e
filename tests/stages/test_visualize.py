import numpy as np
from matplotlib.colors import to_hex

from stages.visualize import WRONG, confusion_figure, grid_titles, gt_vs_pr_grid


def test_grid_titles_name_classes_and_mark_wrong_predictions():
    actual = ["T-shirt/top", "Bag", "Sneaker"]
    predicted = ["T-shirt/top", "Sandal", "Sneaker"]
    figure = gt_vs_pr_grid(np.zeros((3, 28, 28, 1), np.float32), actual, predicted, rows=2, columns=2)
    axes = figure.axes
    assert [axis.get_title() for axis in axes[:3]] == [
        "GT: T-shirt/top / PR: T-shirt/top",
        "GT: Bag / PR: Sandal",
        "GT: Sneaker / PR: Sneaker",
    ]
    assert to_hex(axes[1].title.get_color()) == WRONG and to_hex(axes[0].title.get_color()) == "#000000"
    assert axes[1].spines["left"].get_visible() and not axes[0].spines["left"].get_visible()
    assert not axes[3].axison
    assert grid_titles(["a"], ["b"]) == ["GT: a / PR: b"]


def test_default_grid_is_four_by_eight(make_params):
    params = make_params()
    count = params.visualize.rows * params.visualize.columns
    figure = gt_vs_pr_grid(
        np.zeros((count, 28, 28, 3), np.float32),
        ["x"] * count,
        ["x"] * count,
        params.visualize.rows,
        params.visualize.columns,
    )
    assert (params.visualize.rows, params.visualize.columns) == (4, 8) and len(figure.axes) == 32


def test_confusion_figure_counts():
    figure = confusion_figure(["a", "a", "b"], ["a", "b", "b"], ["a", "b"])
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert texts == ["1", "1", "0", "1"]
