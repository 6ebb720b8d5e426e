import pytest

from imagepipe.orchestration.trials import objective_value


def test_the_objective_is_the_best_epoch_of_the_history(tmp_path):
    history = tmp_path / "history.csv"
    history.write_text("epoch,loss,val_accuracy\n0,1.0,0.5\n1,0.5,0.8\n2,nan,nan\n3,0.4,0.7\n")
    assert objective_value(history, "val_accuracy", "maximize") == 0.8
    assert objective_value(history, "loss", "minimize") == 0.4


def test_a_history_without_the_monitor_names_its_columns(tmp_path):
    history = tmp_path / "history.csv"
    history.write_text("epoch,loss\n0,1.0\n")
    with pytest.raises(ValueError, match=r"no finite 'val_accuracy' values; its columns are \['epoch', 'loss'\]"):
        objective_value(history, "val_accuracy", "maximize")
    with pytest.raises(FileNotFoundError, match="wrote no history"):
        objective_value(tmp_path / "none.csv", "loss", "minimize")
