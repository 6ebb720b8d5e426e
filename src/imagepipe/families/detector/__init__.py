"""The detector family: a one-stage, anchor-free detector of the items of the composed scenes
(data/scenes), a grid of cells each predicting whether an item's centre is in it, its box and
its class.

Kept by validation loss, scored by test mAP at IoU 0.5 by pycocotools (with a bootstrap
interval over test scenes, and mAP at 0.5:0.95 beside it), drawn in `detections.png`, and
served as a `detector`: raw pixels in, a table of detections out. Its `FAMILY` is in `family`.
"""
