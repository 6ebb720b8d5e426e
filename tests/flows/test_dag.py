import subprocess

import pytest

from imagepipe.orchestration.dag import needs_repro, read_dag
from tests.flows.test_orchestration import make_toy_repo
from tests.helpers.prefect import BIN


def test_reads_the_stages_in_dvc_repro_order_with_their_status(tmp_path):
    repo = make_toy_repo(tmp_path / "toy")
    dag = read_dag(repo)
    names = [stage.name for stage in dag]
    assert names[0] == "prepare" and names[-1] == "report" and sorted(names[1:4]) == ["train_a", "train_b", "train_c"]
    assert all(stage.changed for stage in dag)
    assert dict((stage.name, stage.upstream) for stage in dag)["train_a"] == ("prepare",)
    assert [stage.is_training for stage in dag] == [False, True, True, True, False]
    assert dag[0].outs == ("data/prepared.txt",) and dag[-1].outs == ("metrics/report.txt",)

    subprocess.run([BIN / "dvc", "repro", "train_a"], cwd=repo, check=True, capture_output=True)
    changed = {stage.name: stage.changed for stage in read_dag(repo)}
    assert changed == {"prepare": False, "train_a": False, "train_b": True, "train_c": True, "report": True}


def test_targets_bring_their_upstream_stages_only(tmp_path):
    repo = make_toy_repo(tmp_path / "toy")
    assert [stage.name for stage in read_dag(repo, ["train_b"])] == ["prepare", "train_b"]


def test_an_unknown_target_names_the_stages_there_are(tmp_path):
    repo = make_toy_repo(tmp_path / "toy")
    with pytest.raises(
        ValueError,
        match=r"unknown stage\(s\) \['train_z'\]; the stages in dvc.yaml are \['prepare', 'report', 'train_a'",
    ):
        read_dag(repo, ["train_z"])


def test_a_stage_needs_repro_when_it_changed_or_something_upstream_ran(tmp_path):
    repo = make_toy_repo(tmp_path / "toy")
    subprocess.run([BIN / "dvc", "repro"], cwd=repo, check=True, capture_output=True)
    report = next(stage for stage in read_dag(repo) if stage.name == "report")
    assert not report.changed
    assert not needs_repro(report, set()) and not needs_repro(report, {"prepare"})
    assert needs_repro(report, {"train_b"})
