"""`segmentation.png`: test scenes beside their true and predicted masks, a fixed colour per class."""

from pathlib import Path

import keras
import numpy as np
from matplotlib import colormaps
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from imagepipe.core.params import Params
from imagepipe.data.scenes import load_scenes, mask_class_names
from imagepipe.families.unet.evaluation import predict_masks

SHOWN_SCENES = 6
BACKGROUND_COLOUR = (0.0, 0.0, 0.0, 1.0)


def class_colours(num_classes: int) -> ListedColormap:
    """Background black, then the item classes in tab10 (tab20 beyond ten classes) order."""
    palette = colormaps["tab10" if num_classes <= 11 else "tab20"]
    return ListedColormap([BACKGROUND_COLOUR, *(palette(index % palette.N) for index in range(num_classes - 1))])


def segmentation_figure(images: np.ndarray, truth: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> Figure:
    """Rows of scenes; columns: the image (uint8), its true mask, the predicted mask."""
    colours = class_colours(len(class_names))
    rows = len(images)
    height = 2.1 * rows + 1.0  # inches: a row of square pictures per scene, then the legend
    figure = Figure(figsize=(7.5, height))
    axes = figure.subplots(rows, 3, squeeze=False)
    for row in range(rows):
        image = images[row]
        axes[row, 0].imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255)
        for column, mask in ((1, truth[row]), (2, predicted[row])):
            axes[row, column].imshow(mask, cmap=colours, vmin=-0.5, vmax=len(class_names) - 0.5, interpolation="none")
    for column, title in enumerate(("image", "true mask", "predicted mask")):
        axes[0, column].set_title(title)
    for axis in axes.flat:
        axis.set_axis_off()
    handles = [Patch(color=colours(index), label=name) for index, name in enumerate(class_names)]
    figure.legend(handles=handles, loc="lower center", ncol=min(len(class_names), 4), fontsize="small", frameon=False)
    figure.subplots_adjust(bottom=0.9 / height, top=1 - 0.3 / height, hspace=0.08, wspace=0.05)
    return figure


def pictures(model: keras.Model, data: Path, plots: Path, params: Params) -> list[Path]:
    """The first test scenes, their masks and the model's, in plots/segmentation.png."""
    test = load_scenes(data, "test")
    shown = slice(0, min(SHOWN_SCENES, test.count))
    images, truth = test.images[shown], test.masks[shown]
    predicted = predict_masks(model, test.inputs()[shown], params.train_unet.batch_size)
    path = Path(plots) / "segmentation.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    segmentation_figure(images, truth, predicted, mask_class_names(data)).savefig(path, dpi=80)
    return [path]
