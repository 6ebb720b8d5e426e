"""Training: resume state and callbacks, input pipelines, augmentation, the accelerator."""
