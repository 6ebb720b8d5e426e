import numpy as np

from imagepipe.training.classification import gt_vs_pr_grid


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
