import optuna
import pytest
import yaml

from imagepipe.core.errors import StageError
from imagepipe.search.spec import Search, check_keys, load_search, load_searches, starting_points

SPACE = {
    "train_cnn.learning_rate": {"type": "float", "low": 0.001, "high": 0.01, "log": True},
    "train_cnn.batch_size": {"type": "categorical", "choices": [64, 128]},
    "train_cnn.epochs": {"type": "int", "low": 2, "high": 8, "step": 2},
    "train_cnn.augmentation.enabled": {"type": "categorical", "choices": [True, False]},
}
PARAMS = {
    "seed": 1,
    "train_cnn": {"learning_rate": 0.003, "batch_size": 256, "epochs": 4, "augmentation": {"enabled": True}},
}


def search(**changes) -> Search:
    body = {"stage": "train_cnn", "history": "h.csv", "monitor": "val_accuracy", "direction": "maximize", "trials": 4}
    return Search.model_validate(body | {"space": SPACE} | changes)


def write(tmp_path, searches) -> object:
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump({"searches": searches}))
    return path


def test_a_search_file_loads_and_names_its_searches(tmp_path):
    path = write(tmp_path, {"cnn": search().model_dump()})
    assert list(load_searches(path)) == ["cnn"] and load_search(path, "cnn").trials == 4
    with pytest.raises(StageError, match=r"has no search 'gan'; it declares \['cnn'\]"):
        load_search(path, "gan")


def test_a_bad_range_names_the_search_and_the_key(tmp_path):
    bad = search().model_dump() | {"space": {"train_cnn.learning_rate": {"type": "float", "low": 0.1, "high": 0.01}}}
    with pytest.raises(
        StageError, match=r"search 'cnn' is invalid: space\.train_cnn\.learning_rate.*low \(0\.1\) must be below"
    ):
        load_searches(write(tmp_path, {"cnn": bad}))
    with pytest.raises(StageError, match="no `searches:`"):
        load_searches(write(tmp_path, {}))


def test_overrides_are_dvc_exp_run_values_of_the_right_type():
    trial = optuna.trial.FixedTrial(
        {
            "train_cnn.learning_rate": 0.005,
            "train_cnn.batch_size": 64,
            "train_cnn.epochs": 6,
            "train_cnn.augmentation.enabled": False,
        }
    )
    overrides = search().overrides(trial)
    assert overrides == [
        "train_cnn.learning_rate=0.005",
        "train_cnn.batch_size=64",
        "train_cnn.epochs=6",
        "train_cnn.augmentation.enabled=false",
    ]
    assert [yaml.safe_load(item.split("=", 1)[1]) for item in overrides] == [0.005, 64, 6, False]


def test_keys_must_be_params_the_stage_or_its_upstream_reads():
    check_keys(search(), PARAMS, ["seed", "train_cnn", "data.dataset"])
    with pytest.raises(
        StageError, match=r"'train_cnn.learning_rate' is not read by 'train_cnn'.*read \['data.dataset', 'seed'\]"
    ):
        check_keys(search(), PARAMS, ["seed", "data.dataset"])
    with pytest.raises(StageError, match=r"'train_cnn.nope' is not in params.yaml"):
        check_keys(search(space={"train_cnn.nope": SPACE["train_cnn.epochs"]}), PARAMS, ["train_cnn"])


def test_the_first_trials_are_the_current_params_then_the_given_points():
    points = starting_points(search(first=[{"train_cnn.batch_size": 128}]), PARAMS)
    # batch_size 256 lies outside the space's choices: the sampler draws it in the first trial.
    assert points == [
        {"train_cnn.learning_rate": 0.003, "train_cnn.epochs": 4, "train_cnn.augmentation.enabled": True},
        {"train_cnn.batch_size": 128},
    ]
    with pytest.raises(StageError, match=r"values outside it \['train_cnn.batch_size'\]"):
        starting_points(search(first=[{"train_cnn.batch_size": 32}]), PARAMS)


def test_each_trial_number_draws_its_own_point_whichever_process_runs_it():
    def draw(number: int) -> float:
        study = optuna.create_study(sampler=search(sampler={"kind": "random", "seed": 7}).make_sampler(number))
        return study.ask().suggest_float("x", 0, 1)

    assert draw(3) == draw(3) and draw(0) != draw(1)
