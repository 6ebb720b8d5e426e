"""The detector's FAMILY (imagepipe.families.base.Family), as the train and evaluate stages run it."""

from imagepipe.families.base import Family
from imagepipe.families.detector.average_precision import weighted_ap50
from imagepipe.families.detector.evaluation import evaluate, serving
from imagepipe.families.detector.pictures import pictures
from imagepipe.families.detector.training import train
from imagepipe.tracking.scene_tasks import scene_task

FAMILY = Family(
    name="detector",
    data="scenes",
    monitor="val_loss",
    mode="min",
    metric="test_map50",
    higher_is_better=True,
    section=lambda params: params.train_detector,
    train=train,
    evaluate=evaluate,
    statistic=weighted_ap50,
    pictures=pictures,
    serving=serving,
    task=scene_task,
)
