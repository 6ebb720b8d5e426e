"""Pipeline stages: one module per `dvc.yaml` stage, each a thin edge around a pure core."""
