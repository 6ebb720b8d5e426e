"""The U-Net family: semantic segmentation of the composed scenes (data/scenes), a class per pixel.

Trained with per-pixel cross-entropy, kept by validation mean IoU, scored by test mean IoU
(with a bootstrap interval over test scenes), drawn in `segmentation.png`, and served as a
`segmenter`: raw pixels in, a mask of class indices out (index 0 the background). Its
`FAMILY` is in `family`.
"""
