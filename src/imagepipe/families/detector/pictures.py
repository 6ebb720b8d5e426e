"""`detections.png`: test scenes with their true boxes (green) and the detector's (red), each
labelled with its class, and the detections with their scores.

A place often has detections of two classes (a shirt 0.5, a T-shirt 0.3): they all count in
the mAP, but the picture shows the best of each place only, so that labels stay readable.
"""

from pathlib import Path

import keras
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from imagepipe.core.params import Params
from imagepipe.data.scenes import item_class_names, load_scenes
from imagepipe.families.detector.average_precision import SceneBoxes, coco_iou
from imagepipe.families.detector.evaluation import detect, detection_config, per_scene, truth_of

SHOWN_SCENES = 8
COLUMNS = 4
# Detections scored lower are left out of the picture (not the metrics): at the evaluation's
# threshold, low-scored second guesses would hide the scene.
SHOWN_SCORE = 0.3
TRUE_COLOUR, FOUND_COLOUR = "lime", "red"


def best_of_each_place(scene: SceneBoxes) -> SceneBoxes:
    """The detections scored at least SHOWN_SCORE, less those overlapping a better one (IoU > 0.5)."""
    scene = scene.scored_at_least(SHOWN_SCORE).best_first()
    overlaps, kept = coco_iou(scene.boxes, scene.boxes), list[int]()
    for index in range(len(scene.labels)):
        if all(overlaps[index, other] <= 0.5 for other in kept):
            kept.append(index)
    return SceneBoxes(scene.boxes[kept], scene.labels[kept], None if scene.scores is None else scene.scores[kept])


def draw_boxes(axis: Axes, scene: SceneBoxes, class_names: list[str], colour: str) -> None:
    for index, (x_min, y_min, x_max, y_max) in enumerate(scene.boxes):
        # imshow puts pixel centres on integers: pixel edges are half a pixel before them.
        corner = (x_min - 0.5, y_min - 0.5)
        axis.add_patch(Rectangle(corner, x_max - x_min, y_max - y_min, fill=False, edgecolor=colour, linewidth=1.2))
        text = class_names[int(scene.labels[index])]
        if scene.scores is not None:
            text = f"{text} {scene.scores[index]:.2f}"
        below = scene.scores is None  # truth under its box, detections above theirs
        axis.text(
            x_min - 0.5,
            (y_max if below else y_min) - 0.5,
            text,
            color=colour,
            fontsize=6,
            va="top" if below else "bottom",
            bbox={"facecolor": "black", "alpha": 0.5, "pad": 0.5, "linewidth": 0},
        )


def detection_figure(images, truth: list[SceneBoxes], found: list[SceneBoxes], class_names: list[str]) -> Figure:
    rows = -(-len(images) // COLUMNS)
    figure = Figure(figsize=(2.6 * COLUMNS, 2.6 * rows + 0.4))
    axes = figure.subplots(rows, COLUMNS, squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.set_axis_off()
        if index >= len(images):
            continue
        image = images[index]
        axis.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255)
        draw_boxes(axis, truth[index], class_names, TRUE_COLOUR)
        draw_boxes(axis, found[index], class_names, FOUND_COLOUR)
    title = f"true boxes (green); detections (red), the best of each place scored ≥ {SHOWN_SCORE}"
    figure.suptitle(title, fontsize="medium")
    figure.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.92, hspace=0.08, wspace=0.05)
    return figure


def pictures(model: keras.Model, data: Path, plots: Path, params: Params) -> list[Path]:
    """The first test scenes with their true boxes and detections, in plots/detections.png."""
    test = load_scenes(data, "test")
    class_names = item_class_names(data)
    count = min(SHOWN_SCENES, test.count)
    config = detection_config(model, params.train_detector, class_names)
    found = per_scene(detect(model, test.inputs()[:count], config), count, class_names)
    shown = [best_of_each_place(scene) for scene in found]
    path = Path(plots) / "detections.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    detection_figure(test.images[:count], truth_of(test)[:count], shown, class_names).savefig(path, dpi=100)
    return [path]
