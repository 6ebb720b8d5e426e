"""Tracking: MLflow runs, provenance, the model registry, serving."""
