"""The autoencoder's FAMILY (imagepipe.families.base.Family), as the train and evaluate stages run it."""

from imagepipe.families.anomaly.scores import weighted_auroc
from imagepipe.families.autoencoder.evaluation import evaluate, serving
from imagepipe.families.autoencoder.pictures import pictures
from imagepipe.families.autoencoder.training import train
from imagepipe.families.base import Family
from imagepipe.tracking.tasks import task_of

FAMILY = Family(
    name="autoencoder",
    data="images",
    monitor="val_loss",
    mode="min",
    metric="test_anomaly_auroc",
    higher_is_better=True,
    section=lambda params: params.train_autoencoder,
    train=train,
    evaluate=evaluate,
    statistic=weighted_auroc,
    pictures=pictures,
    serving=serving,
    task=task_of,
)
