"""The RNN's FAMILY (imagepipe.families.base.Family), as the train and evaluate stages run it."""

from imagepipe.families.base import Family
from imagepipe.families.rnn.evaluation import evaluate, serving, weighted_accuracy
from imagepipe.families.rnn.pictures import pictures
from imagepipe.families.rnn.training import train
from imagepipe.tracking.tasks import task_of

FAMILY = Family(
    name="rnn",
    data="images",
    monitor="val_accuracy",
    mode="max",
    metric="test_accuracy",
    higher_is_better=True,
    section=lambda params: params.train_rnn,
    train=train,
    evaluate=evaluate,
    statistic=weighted_accuracy,
    pictures=pictures,
    serving=serving,
    task=task_of,
)
