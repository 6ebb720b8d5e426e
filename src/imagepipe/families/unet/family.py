"""The U-Net's FAMILY (imagepipe.families.base.Family), as the train and evaluate stages run it."""

from imagepipe.families.base import Family
from imagepipe.families.unet.evaluation import evaluate, serving
from imagepipe.families.unet.iou import weighted_mean_iou
from imagepipe.families.unet.pictures import pictures
from imagepipe.families.unet.training import MEAN_IOU, train
from imagepipe.tracking.scene_tasks import scene_task

FAMILY = Family(
    name="unet",
    data="scenes",
    monitor=f"val_{MEAN_IOU}",
    mode="max",
    metric="test_mean_iou",
    higher_is_better=True,
    section=lambda params: params.train_unet,
    train=train,
    evaluate=evaluate,
    statistic=weighted_mean_iou,
    pictures=pictures,
    serving=serving,
    task=scene_task,
)
