"""The VAE family: a convolutional variational autoencoder trained without one class
(train_vae.anomaly_class), scored by how well it tells that class apart, and served as a
`generator` of images from latent noise (its decoder). Its `FAMILY` is in `family`.
"""
