"""The autoencoder family: a convolutional denoising autoencoder trained without one class
(train_autoencoder.anomaly_class), which it then tells apart by its reconstruction error.

Kept by validation loss (the MSE of normal images), scored by test AUROC (the held-out class
the positive), drawn in `reconstructions.png` and `anomaly_scores.png`, and served as a
`reconstructor`: raw pixels in, each image's anomaly score and flag out. Its `FAMILY` is in
`family`.
"""
