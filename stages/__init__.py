"""Pipeline stages: one module per `dvc.yaml` stage, each a thin edge around a pure core."""

import os

# TensorFlow's C++ INFO/WARNING lines (oneDNN, "no CUDA drivers") drown the stage logs; errors stay.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
