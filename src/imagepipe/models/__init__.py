"""Models: the CNNs, classifier heads, backbones, the GAN, safe loading."""
