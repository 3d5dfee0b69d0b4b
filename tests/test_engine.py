import json

import pytest

from augbench.engine import Callback, train
from augbench.engine.record import git_commit
from augbench.engine.run import METRICS_FILE

TIMING = {"epoch_seconds", "images_per_second", "eval_seconds", "test_seconds"}


def metric_lines(run_dir):
    lines = [json.loads(line) for line in (run_dir / METRICS_FILE).read_text().splitlines()]
    return [{k: v for k, v in m.items() if k not in TIMING} for m in lines]


def comparable(record):
    drop = {"train_seconds", "eval_seconds", "samples_per_second", "peak_memory_mb", "started_at", "finished_at"}
    return {k: v for k, v in record.items() if k not in drop}


@pytest.mark.parametrize("method", ["ce", "dlb"])
def test_run_on_synthetic_is_well_above_chance(tmp_path, small_config, method):
    record = train(small_config(method=method, train_subset=None, epochs=3), tmp_path / "run", progress=False,
                   log=lambda _: None)
    assert record["status"] == "finished"
    assert record["test_acc"] > 40.0, record["test_acc"]  # 10 classes: chance is 10%
    new_samples = 3 * (1800 // 64) * 64
    # DLB forwards every batch twice (now and replayed), except that the very first step has nothing to replay.
    assert record["forward_samples"] == (2 * new_samples - 64 if method == "dlb" else new_samples)
    for key in ("best_val_acc", "test_acc_at_best_val", "test_nll", "test_ece", "versions", "device",
                "train_size", "val_size", "test_size", "samples_per_second", "git_commit", "budget"):
        assert key in record
    assert (record["train_size"], record["val_size"], record["test_size"]) == (1800, 200, 1000)
    assert len(metric_lines(tmp_path / "run")) == 3


def test_same_seed_gives_identical_records(tmp_path, small_config):
    config = small_config(method="dlb")
    a = train(config, tmp_path / "a", progress=False, log=lambda _: None)
    b = train(config, tmp_path / "b", progress=False, log=lambda _: None)
    assert comparable(a) == comparable(b)
    assert metric_lines(tmp_path / "a") == metric_lines(tmp_path / "b")
    c = train(small_config(method="dlb", seed=4), tmp_path / "c", progress=False, log=lambda _: None)
    assert c["test_acc"] != a["test_acc"] or metric_lines(tmp_path / "c") != metric_lines(tmp_path / "a")


class CommitAtStart(Callback):
    def on_start(self, config, resumed):
        self.cached = git_commit.cache_info().currsize


def test_the_record_names_the_commit_read_before_training_starts(tmp_path, small_config):
    """A commit made while a long run trains must not be named as the code it ran."""
    git_commit.cache_clear()
    probe = CommitAtStart()
    record = train(small_config(epochs=1), tmp_path / "run", callbacks=[probe], progress=False, log=lambda _: None)
    assert probe.cached == 1 and record["git_commit"] == git_commit()


class Crash(Callback):
    def __init__(self, after_epoch):
        self.after_epoch = after_epoch

    def on_epoch_end(self, metrics):
        if metrics["epoch"] == self.after_epoch:
            raise RuntimeError("simulated crash")


@pytest.mark.parametrize("method", ["ce", "dlb"])
def test_resume_after_crash_equals_straight_run(tmp_path, small_config, method):
    config = small_config(method=method, epochs=4, schedule="cosine", warmup_epochs=1)
    straight = train(config, tmp_path / "straight", progress=False, log=lambda _: None)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config, tmp_path / "resumed", callbacks=[Crash(2)], progress=False, log=lambda _: None)
    assert not (tmp_path / "resumed" / "result.json").exists()
    assert len(metric_lines(tmp_path / "resumed")) == 2
    resumed = train(config, tmp_path / "resumed", resume=True, progress=False, log=lambda _: None)
    assert comparable(resumed) == comparable(straight)
    assert metric_lines(tmp_path / "resumed") == metric_lines(tmp_path / "straight")


def test_finished_run_is_not_trained_again(tmp_path, small_config):
    config = small_config(epochs=1)
    first = train(config, tmp_path / "r", progress=False, log=lambda _: None)
    again = train(config, tmp_path / "r", progress=False, log=lambda _: None)
    assert again == json.loads((tmp_path / "r" / "result.json").read_text())
    assert again["finished_at"] == first["finished_at"]


def test_non_finite_loss_fails_the_run_with_reason(tmp_path, small_config):
    record = train(small_config(lr=1e12, epochs=1), tmp_path / "nan", progress=False, log=lambda _: None)
    assert record["status"] == "failed"
    assert "non-finite loss" in record["reason"]
    saved = json.loads((tmp_path / "nan" / "result.json").read_text())
    assert saved["status"] == "failed" and saved["reason"] == record["reason"]


def test_samples_budget_halves_two_view_methods(tmp_path, small_config):
    ce = train(small_config(budget="samples", epochs=2), tmp_path / "ce", progress=False, log=lambda _: None)
    dlb = train(small_config(budget="samples", epochs=2, method="dlb"), tmp_path / "dlb", progress=False,
                log=lambda _: None)
    assert ce["epochs_trained"] == 2 and dlb["epochs_trained"] == 1
    # DLB's first step forwards one batch only; otherwise the budgets are equal.
    assert dlb["forward_samples"] == ce["forward_samples"] - 64


def test_label_noise_is_recorded(tmp_path, small_config):
    record = train(small_config(label_noise="sym:0.4", epochs=1), tmp_path / "n", progress=False, log=lambda _: None)
    assert record["label_noise"]["kind"] == "sym"
    assert abs(record["label_noise"]["flipped_fraction"] - 0.4) < 0.06
