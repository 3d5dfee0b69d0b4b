"""``augbench tune --dry-run``: run counts and forward samples against a hand count, a real probe, nothing written
without --save, and the saved estimate on the leaderboard."""

import json
import os
from pathlib import Path

import pytest
import torch

from augbench.cli import main
from augbench.tune.estimate import Estimate, estimate, makespan
from augbench.tune.experiment import load_experiment
from augbench.tune.runner import threads_note, worker_threads

# 1 backbone x 1 recipe x 2 methods x 2 budgets = 3 cells (CE under the samples budget would repeat its epochs
# run, so it runs once); only DLB has a search space (3 trials).
EXPERIMENT = """
name: tiny_estimate
dataset: synthetic
train_subset: 256
val_fraction: 0.1
backbones: [cifar_resnet8]
recipes: [baseline]
methods: [ce, dlb]
budget: [epochs, samples]
epochs: 2
fixed: {batch_size: 64, lr: 0.05}
search:
  trials: 3
  space: {dlb: {temperature: {type: float, low: 1.0, high: 6.0}}}
final: {seeds: [0, 1]}
"""
# Runs: search 2 DLB cells x 3 trials = 6; final 3 cells x 2 seeds = 6.
# Forward samples (256 images, batch 64: 4 steps per epoch; DLB forwards 64 new + 64 replayed per step):
#   CE: 2 epochs x 4 steps x 64 = 512 per run; DLB at epochs: 8 steps x 128 = 1024;
#   DLB at samples: round(2 x 4 / 2) = 4 steps x 128 = 512.
#   search 3 x 1024 + 3 x 512 = 4608; final 2 x (512 + 1024 + 512) = 4096; total 8704.
RUNS, SEARCH, FINAL, FORWARD = 12, 6, 6, 8704


def write_experiment(folder: Path) -> Path:
    path = folder / "tiny_estimate.yaml"
    path.write_text(EXPERIMENT)
    return path


def test_dry_run_counts_runs_probes_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_experiment(tmp_path)
    assert main(["tune", str(path), "--dry-run", "--device", "cpu", "--throughput", "10000"]) == 0
    out = capsys.readouterr().out
    assert f"3 cells, {RUNS} runs at most ({SEARCH} search trials at most + {FINAL} final runs)" in out
    assert "forward samples: 8.7k in training" in out
    assert "cifar_resnet8 / ce / baseline:" in out and "cifar_resnet8 / dlb / baseline:" in out
    assert "estimated wall time on this machine, one worker:" in out
    assert "estimated at 10000 forward samples/s (--throughput):" in out
    assert "nothing written" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny_estimate.yaml"]  # no runs/, no storage


def test_estimate_adds_up_from_its_probes(tmp_path):
    est = estimate(load_experiment(write_experiment(tmp_path)), device="cpu", throughput=2000.0, log=lambda _: None)
    assert (est.runs, est.search_runs, est.final_runs) == (RUNS, SEARCH, FINAL)
    assert est.forward_samples == pytest.approx(FORWARD)
    assert {(p.method, p.forward_samples_per_step) for p in est.probes} == {("ce", 64.0), ("dlb", 128.0)}
    ce, dlb = sorted(est.probes, key=lambda p: p.method)
    # Training seconds: every run's planned steps at its probe's seconds per step: CE 2 final runs x 8 steps (its
    # samples-budget run would repeat the epochs run); DLB search 3 x 8 (epochs) + 3 x 4 (samples), final 2 x 8 + 2 x 4.
    steps = {"ce": 2 * 8, "dlb": 3 * 8 + 3 * 4 + 2 * 8 + 2 * 4}
    assert est.train_seconds == pytest.approx(steps["ce"] * ce.seconds_per_step + steps["dlb"] * dlb.seconds_per_step)
    assert est.seconds == pytest.approx(est.train_seconds + est.eval_seconds + est.setup_seconds)
    # Evaluated images: the validation split every epoch plus the test set twice, per run.
    assert est.eval_images > 0 and est.eval_seconds > 0
    assert est.seconds_at_throughput == pytest.approx((FORWARD + est.eval_images * est.eval_ratio) / 2000.0)


def test_makespan_deals_the_runs_in_order_to_the_first_free_worker():
    assert makespan([10, 10, 10], 1) == 30
    assert makespan([10, 10, 10], 2) == 20
    assert makespan([10, 30, 10, 10], 2) == 30  # runs 3 and 4 both go to the worker that ran the first
    assert makespan([5, 5, 20], 2) == 25  # in order: the long run comes last and waits for a free worker
    assert makespan([], 3) == 0


def test_worker_threads_share_the_cores_or_fewer_if_omp_num_threads_says(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert [worker_threads(n) for n in (1, 2, 3, 16)] == [8, 4, 2, 1]
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert worker_threads(2) == 3 and threads_note(2) is None  # fewer than the cores shared out: as asked
    assert worker_threads(4) == 2  # 3 x 4 threads would outnumber the 8 cores
    assert "OMP_NUM_THREADS=3 x 4 workers" in threads_note(4) and "with 2 thread(s)" in threads_note(4)
    assert "16 workers on this machine's 8 cores" in threads_note(16)


def test_estimate_for_workers_probes_at_their_threads_and_deals_the_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    est = estimate(load_experiment(write_experiment(tmp_path)), device="cpu", workers=2, log=lambda _: None)
    assert torch.get_num_threads() == threads  # the probes' thread count is not left behind
    assert (est.workers, est.threads, len(est.run_seconds)) == (2, 1, RUNS)
    assert sum(est.run_seconds) == pytest.approx(est.seconds)  # what the records' run times add up to
    assert est.wall_seconds == pytest.approx(makespan(est.run_seconds, 2)) and est.wall_seconds < est.seconds
    assert est.to_dict()["wall_seconds"] == est.wall_seconds and est.to_dict()["workers"] == 2
    monkeypatch.chdir(tmp_path)
    assert main(["tune", "tiny_estimate.yaml", "--dry-run", "--device", "cpu", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "estimated wall time on this machine, 2 workers of 1 thread(s):" in out and "the runs add up to" in out
    assert "OMP_NUM_THREADS" not in out
    cores = os.cpu_count() or 1
    monkeypatch.setenv("OMP_NUM_THREADS", str(2 * cores))  # more than the cores: capped, and the dry run says so
    assert main(["tune", "tiny_estimate.yaml", "--dry-run", "--device", "cpu", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert f"2 workers of {max(1, cores // 2)} thread(s):" in out and f"OMP_NUM_THREADS={2 * cores} x 2 workers" in out


def test_throughput_formula_by_hand():
    est = Estimate(experiment="x", device="cpu", search_runs=0, final_runs=2, forward_samples=1000.0,
                   eval_images=500.0, seconds=20.0, train_seconds=10.0, eval_seconds=2.0, setup_seconds=8.0,
                   probe_seconds=1.0, probes=[], eval_seconds_per_image={}, throughput=100.0)
    # This machine: 0.01 s per forward sample, 0.004 s per evaluated image: ratio 0.4.
    assert est.eval_ratio == pytest.approx(0.4)
    assert est.seconds_at_throughput == pytest.approx((1000 + 500 * 0.4) / 100)
    assert est.to_dict()["runs"] == 2


def test_saved_estimate_reaches_the_leaderboard(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_experiment(tmp_path)
    out = tmp_path / "runs" / "tiny_estimate"
    assert main(["tune", str(path), "--dry-run", "--save", "--device", "cpu", "--out", str(out)]) == 0
    assert f"saved to {out / 'estimate.json'}" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["estimate.json"]  # no storage, no experiment copy
    saved = json.loads((out / "estimate.json").read_text())
    assert (saved["experiment"], saved["runs"], saved["forward_samples"]) == ("tiny_estimate", RUNS, FORWARD)
    # Next to the records the experiment writes, the leaderboard sets the estimate beside the actual time.
    from test_leaderboard import make_record, write_records

    write_records(out, [make_record(method=m, seed=s, experiment="tiny_estimate") for m in ("ce", "dlb")
                        for s in (0, 1)])
    board = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", str(out), "--out", str(board)]) == 0
    readme = (board / "README.md").read_text()
    assert "## Cost: estimated and actual wall time" in readme
    assert "tiny_estimate: estimated" in readme and f"for at most {RUNS} runs" in readme
    assert "actual 4.0 min over 4 runs" in readme  # seeds 0 and 1 take 30 s and 90 s, for each method


@pytest.mark.parametrize("argv,flag", [
    (["--dry-run", "--throughput", "0"], "--throughput"),
    (["--throughput", "100"], "--throughput"),
    (["--save"], "--save"),
])
def test_bad_estimate_flags_exit_2_and_write_nothing(tmp_path, capsys, monkeypatch, argv, flag):
    monkeypatch.chdir(tmp_path)
    path = write_experiment(tmp_path)
    assert main(["tune", str(path), "--device", "cpu", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"augbench tune: error: {flag}") and "accepted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny_estimate.yaml"]


def test_leaderboard_cost_line_gives_the_wall_estimate_for_workers():
    from augbench.leaderboard.text import cost_lines

    estimate = {"seconds": 480.0, "wall_seconds": 240.0, "workers": 2, "runs": 12, "device": "cpu",
                "created_at": "2026-11-30"}
    line, = cost_lines([{"experiment": "q", "estimate": estimate, "runs": 12, "actual_seconds": 500.0,
                         "elapsed_seconds": 250.0}])
    assert "estimated 8.0 min for at most 12 runs" in line and "4.0 min from first start to last finish with 2 " \
        "workers" in line and "estimate/actual 0.96" in line and "4.2 min from first start to last finish" in line
