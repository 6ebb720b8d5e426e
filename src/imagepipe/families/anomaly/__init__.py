"""What the autoencoder and VAE families share (not a family itself): the anomaly class they
are trained without and scored on (`scores`), their convolutional encoder and decoder
(`networks`), and the pictures of their reconstructions and scores (`pictures`)."""
