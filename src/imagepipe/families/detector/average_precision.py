"""Average precision at IoU 0.5 as COCO computes it, from per-scene rows a bootstrap can weight.

Detections are matched to the truth once per scene, as pycocotools' COCOeval.evaluateImg does:
best score first, each to the unmatched true box of its class it overlaps most (IoU ≥ 0.5,
ties to the later box). A resample of scenes only repeats or drops scenes, so matches stay;
what it changes is how much each detection and true box counts, its scene's weight.

Items (`scene_rows`), one row per scene, float64:
`[num_classes, true boxes of class 0, …, of class K-1, then per detection slot: score, class, hit]`,
the slots best first and padded with class -1 to the most detections of any scene (at least one).
"""

from dataclasses import dataclass

import numpy as np

IOU_THRESHOLD = 0.5
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)  # COCO's 101-point interpolation
SLOT = 3  # score, class, hit


@dataclass(frozen=True)
class SceneBoxes:
    """A scene's boxes (k, 4; pixel edges x_min, y_min, x_max, y_max), their class indices
    (k,), and for detections their scores (k,)."""

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray | None = None

    def best_first(self) -> "SceneBoxes":
        order = np.argsort(-np.asarray(self.scores), kind="stable")
        return SceneBoxes(self.boxes[order], self.labels[order], np.asarray(self.scores)[order])

    def scored_at_least(self, score: float) -> "SceneBoxes":
        keep = np.asarray(self.scores) >= score
        return SceneBoxes(self.boxes[keep], self.labels[keep], np.asarray(self.scores)[keep])


def xywh(boxes: np.ndarray) -> np.ndarray:
    """Pixel edges (k, 4) as COCO's [x, y, width, height], float64."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def coco_iou(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """IoU (len(found), len(truth)) computed as pycocotools' bbIou does, from [x, y, w, h]."""
    d, g = xywh(found)[:, None, :], xywh(truth)[None, :, :]
    width = np.minimum(d[..., 2] + d[..., 0], g[..., 2] + g[..., 0]) - np.maximum(d[..., 0], g[..., 0])
    height = np.minimum(d[..., 3] + d[..., 1], g[..., 3] + g[..., 1]) - np.maximum(d[..., 1], g[..., 1])
    overlap = width * height
    union = d[..., 2] * d[..., 3] + g[..., 2] * g[..., 3] - overlap
    meets = (width > 0) & (height > 0)
    return np.divide(overlap, union, out=np.zeros_like(overlap), where=meets)


def hits(found: SceneBoxes, truth: SceneBoxes, threshold: float = IOU_THRESHOLD) -> np.ndarray:
    """Whether each detection of found (best first) is a true positive against truth."""
    overlaps = coco_iou(found.boxes, truth.boxes)
    overlaps[np.asarray(found.labels)[:, None] != np.asarray(truth.labels)[None, :]] = -1.0
    taken, hit = np.zeros(overlaps.shape[1], bool), np.zeros(overlaps.shape[0], bool)
    for index in range(len(hit)):
        candidates = np.where(taken, -1.0, overlaps[index])
        if candidates.size and candidates.max() >= threshold:
            best = len(candidates) - 1 - int(np.argmax(candidates[::-1]))
            taken[best] = hit[index] = True
    return hit


def scene_rows(found: list[SceneBoxes], truth: list[SceneBoxes], num_classes: int) -> np.ndarray:
    """The items of a test set: found and truth per scene, in the layout above."""
    if len(found) != len(truth):
        raise ValueError(f"need detections for every scene: {len(found)} scenes of detections, {len(truth)} scenes")
    width = max([len(scene.labels) for scene in found] + [1])
    rows = np.zeros((len(truth), 1 + num_classes + SLOT * width))
    rows[:, 0] = num_classes
    for index, (detected, true) in enumerate(zip(found, truth, strict=True)):
        rows[index, 1 : 1 + num_classes] = np.bincount(np.asarray(true.labels, np.int64), minlength=num_classes)
        slots = rows[index, 1 + num_classes :].reshape(width, SLOT)
        slots[:, 1] = -1
        detected = detected.best_first()
        count = len(detected.labels)
        slots[:count] = np.stack([np.asarray(detected.scores), detected.labels, hits(detected, true)], axis=1)
    return rows


def weighted_ap50(items: np.ndarray, weights: np.ndarray) -> float:
    """Mean over classes with true boxes of COCO's AP at IoU 0.5, each scene (row of items)
    counted weights[i] times; 0 when no scene with weight holds a true box."""
    items, weights = np.asarray(items, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    num_classes = int(items[0, 0]) if items.ndim == 2 and len(items) else 0
    if num_classes < 1 or (items.shape[1] - 1 - num_classes) % SLOT or weights.shape != (len(items),):
        raise ValueError(
            f"items must be scene rows (detector.average_precision.scene_rows) with a weight per row, "
            f"got items of shape {items.shape} and weights of shape {weights.shape}"
        )
    truth_count = weights @ items[:, 1 : 1 + num_classes]
    slots = items[:, 1 + num_classes :].reshape(len(items), -1, SLOT)
    slot_weights = np.broadcast_to(weights[:, None], slots.shape[:2])
    present = (slots[..., 1] >= 0) & (slot_weights > 0)
    score, label, hit = (slots[..., column][present] for column in range(SLOT))
    weight = slot_weights[present]
    order = np.lexsort((-score, label))  # stable: ties keep scene order, as COCOeval.accumulate
    present_classes = truth_count > 0
    if not present_classes.any():
        return 0.0
    precisions = class_ap50(label[order].astype(np.int64), hit[order] * weight[order], weight[order], truth_count)
    return float(precisions[present_classes].mean())


def class_ap50(label: np.ndarray, hit: np.ndarray, weight: np.ndarray, truth_count: np.ndarray) -> np.ndarray:
    """Each class's AP at 0.5 as COCOeval.accumulate computes it, interpolated at 101 recall
    points, from detections sorted by class, then best first: their class, weighted hits and
    weights; truth_count, the weighted true boxes per class.

    The classes' detections are laid out as rows of a matrix (padded with no weight), so that
    one cumulative sum and one running maximum serve them all.
    """
    num_classes = len(truth_count)
    counts = np.bincount(label, minlength=num_classes)
    column = np.arange(len(label)) - np.repeat(np.cumsum(counts) - counts, counts)
    true_positives, false_positives = np.zeros((2, num_classes, max(counts.max(initial=0), 1)))
    true_positives[label, column], false_positives[label, column] = hit, weight - hit
    true_positives, false_positives = true_positives.cumsum(axis=1), false_positives.cumsum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = true_positives / truth_count[:, None]
    precision = true_positives / (false_positives + true_positives + np.spacing(1))
    precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    precisions = np.zeros(num_classes)
    for k in np.nonzero(counts)[0]:
        index = np.searchsorted(recall[k, : counts[k]], RECALL_THRESHOLDS, side="left")
        precisions[k] = precision[k, index[index < counts[k]]].sum() / len(RECALL_THRESHOLDS)
    return precisions
