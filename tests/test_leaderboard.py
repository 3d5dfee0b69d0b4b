"""The leaderboard: statistics against hand-computed values, sources, aggregation, escaping, and the page in a
real headless Chromium."""

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from augbench.cli import main
from augbench.leaderboard import (
    aggregate,
    build,
    holm_adjust,
    load_records,
    mean_interval,
    paired_gain,
    t_quantile,
)
from augbench.leaderboard.sources import merge
from augbench.leaderboard.text import search_text

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
HOSTILE_RECIPE = '<script>alert("recipe")</script><img src=x onerror=alert(1)>|*[x](javascript:1)'


# -- records as the engine and the tuner write them ------------------------------------------------

def make_record(*, method="ce", seed=0, test_acc=90.0, model="cifar_resnet8", recipe="baseline",
                dataset="fashion_mnist", epochs=10, budget="epochs", noise=None, status="finished", phase="final",
                planned_seeds=(0, 1, 2), train_size=10000, forward_samples=None, train_seconds=30.0, **extra):
    """A result record with every field of ``Run.record`` plus the tuner's fields (phase=None: a plain run)."""
    finished = status == "finished"
    passes = 2 if method == "dlb" else 1
    record = {
        "dataset": dataset, "model": model, "recipe": recipe, "method": method,
        "method_args": {"temperature": 3.0, "alpha": 1.0, "forward": "separate"} if method == "dlb" else {},
        "hyperparameters": {"lr": 0.1, "batch_size": 128, "momentum": 0.9, "nesterov": True,
                            "weight_decay": 5e-4, "schedule": "multistep", "milestones": [], "gamma": 0.1,
                            "warmup_epochs": 0.0, "channels_last": True, "bf16": False},
        "seed": seed, "epochs": epochs, "epochs_trained": epochs if finished else 1, "budget": budget,
        "train_size": train_size, "val_size": 1000, "test_size": 10000, "label_noise": noise,
        "test_acc": test_acc if finished else None,
        "test_acc_at_best_val": test_acc - 0.1 if finished else None,
        "best_val_acc": test_acc + 0.3 if finished else None, "best_val_epoch": epochs,
        "val_acc": test_acc + 0.2 if finished else None, "test_nll": 0.3, "test_ece": 0.02,
        "forward_samples": forward_samples if forward_samples is not None else passes * epochs * train_size,
        "train_seconds": train_seconds * passes, "samples_per_second": 3000.0, "peak_memory_mb": 512.0,
        "device": "cpu (x86_64, 2 cores, 2 threads)",
        "versions": {"augbench": "0.1.0", "torch": "2.14.1", "timm": "1.0.31", "python": "3.11.7"},
        "git_commit": "ad311fe0000000000000000000000000000000aa", "started_at": "2025-01-01T10:00:00+00:00",
        "finished_at": f"2025-01-01T10:{seed:02d}:30+00:00", "status": status,
        "reason": None if finished else "non-finite loss (nan) at epoch 1, step 3",
        "config": {"dataset": dataset, "model": model, "method": method, "seed": seed, "epochs": epochs},
        "command": ["augbench", "tune", "recipes/experiments/quickstart.yaml"],
    }
    if phase is not None:
        record.update({"experiment": "quickstart", "cell": f"{model}-{recipe}-{method}", "phase": phase,
                       "trial_number": seed, "tuned_params": {"lr": 0.1}})
        if phase == "final":
            record["planned_seeds"] = list(planned_seeds)
            record["reproduce"] = (f"augbench train --dataset {dataset} --model {model} --recipe {recipe} "
                                   f"--method {method} --epochs {epochs} --seed {seed}")
    record.update(extra)
    return record


def write_records(root, records):
    """Lays records out as an experiment folder: final/<cell>/seed-<s>/result.json, search/<n>/result.json."""
    root = Path(root)
    for number, record in enumerate(records):
        if record.get("phase") == "search":
            folder = root / "search" / f"trial-{number}"
        else:
            cell = f"{record['model']}_{record['recipe']}_{record.get('method')}_{record['epochs']}_{number}"
            folder = root / "final" / "".join(c if c.isalnum() else "_" for c in cell) / f"seed-{record['seed']}"
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(record))
    return root


CE = {0: 90.0, 1: 91.5, 2: 89.0}
DLB = {0: 91.0, 1: 92.7, 2: 90.1}  # differences 1.0, 1.2, 1.1: small next to the seed-to-seed spread


def standard_records(recipe="baseline"):
    return ([make_record(method="ce", seed=s, test_acc=a, recipe=recipe) for s, a in CE.items()]
            + [make_record(method="dlb", seed=s, test_acc=a, recipe=recipe) for s, a in DLB.items()])


def read_csv(path, kind="cell", metric="test_acc"):
    """Rows of results.csv of one kind (cell, interaction) and metric; None: every row."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [r for r in rows if (kind is None or r["kind"] == kind) and (metric is None or r["metric"] == metric)]


def metric_view(page, metric="test_acc"):
    """The part of index.html that shows one metric (the page holds one view per metric)."""
    view = page.split(f'data-metric-view="{metric}"')[1]
    return view.split('<div class="metric-view"')[0].split('<section id="provenance"')[0]


# -- statistics ------------------------------------------------------------------------------------

@pytest.mark.parametrize("df,expected", [(1, 12.706205), (2, 4.302653), (4, 2.776445), (9, 2.262157),
                                         (29, 2.045230), (1000, 1.962339)])
def test_t_quantile_matches_the_table(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=5e-7)
    assert t_quantile(0.025, df) == pytest.approx(-expected, abs=5e-7)


def test_interval_by_hand():
    interval = mean_interval([1.0, 2.0, 3.0])
    # mean 2, s = 1, t_{0.975,2} = 4.302653 -> half-width 4.302653 / sqrt(3) = 2.484138
    assert (interval.mean, interval.n, interval.sd) == (2.0, 3, 1.0)
    assert interval.half_width == pytest.approx(2.484138, abs=1e-6)
    assert (interval.low, interval.high) == pytest.approx((2.0 - 2.484138, 2.0 + 2.484138), abs=1e-6)
    single = mean_interval([91.0])
    assert (single.mean, single.n, single.half_width, single.excludes_zero) == (91.0, 1, None, False)
    assert mean_interval([]) is None


def test_paired_gain_by_hand_and_pairing_matters():
    gain = paired_gain(DLB, {**CE, 3: 80.0})  # seed 3 has no partner and is left out
    assert gain.seeds == (0, 1, 2)
    assert gain.differences == pytest.approx((1.0, 1.2, 1.1))
    # differences mean 1.1, s = 0.1, half-width 4.302653 * 0.1 / sqrt(3) = 0.248414
    assert gain.interval.mean == pytest.approx(1.1)
    assert gain.interval.half_width == pytest.approx(0.248414, abs=1e-6)
    assert gain.significant
    # Unpaired, the same numbers overlap completely: the spread between seeds hides the gain.
    dlb, ce = mean_interval(list(DLB.values())), mean_interval(list(CE.values()))
    assert dlb.low < ce.high
    noisy = paired_gain({0: 91.0, 1: 91.5, 2: 90.0}, CE)  # differences 1.0, 0.0, 1.0: interval includes 0
    assert noisy.interval.half_width == pytest.approx(t_quantile(0.975, 2) * math.sqrt(1 / 3) / math.sqrt(3))
    assert not noisy.significant
    assert paired_gain({5: 90.0}, CE) is None


def test_p_value_and_holm_by_hand():
    from augbench.leaderboard.stats import holm_family

    gain = paired_gain(DLB, CE)  # t = 1.1 / (0.1 / sqrt 3) = 19.0526, df 2: p = 1 - t / sqrt(t^2 + 2)
    t = 1.1 / (0.1 / math.sqrt(3))
    assert gain.interval.p_value == pytest.approx(1 - t / math.sqrt(t * t + 2), rel=1e-9)
    # Holm 1979: sorted 0.005, 0.01, 0.03, 0.04 -> 4 x 0.005, 3 x 0.01, max(0.03, 2 x 0.03), max(0.06, 1 x 0.04)
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.5]) == [0.5] and holm_adjust([]) == []
    assert holm_adjust([0.4, 0.3]) == pytest.approx([0.6, 0.6])  # capped by the running maximum, never above 1
    # A family: two real gains, one degenerate, one from one seed; only the real ones are tested.
    family = holm_family({"a": gain, "b": paired_gain({0: 91.0, 1: 92.0}, {0: 90.0, 1: 91.0}),
                          "c": paired_gain({0: 91.0}, {0: 90.0}), "d": paired_gain({0: 90.5, 1: 92.0, 2: 89.0}, CE),
                          "e": None})
    assert (family.shown, family.tested, family.degenerate) == (4, 2, 1)
    p_d = paired_gain({0: 90.5, 1: 92.0, 2: 89.0}, CE).interval.p_value
    assert family.holm_p("a") == pytest.approx(min(1.0, 2 * min(gain.interval.p_value, p_d)))
    assert family.holm_p("b") is None and family.holm_p("c") is None and not family.holm_significant("b")


def test_degenerate_interval_is_never_significant():
    gain = paired_gain({0: 91.0, 1: 92.0, 2: 93.5}, {0: 90.0, 1: 91.0, 2: 92.5})  # +1.0 on every seed
    assert gain.degenerate and gain.interval.half_width == pytest.approx(0.0, abs=1e-12)
    assert not gain.significant and gain.interval.p_value is None
    assert gain.to_dict()["degenerate"] is True and gain.to_dict()["significant"] is False
    assert not paired_gain(DLB, CE).degenerate
    assert not mean_interval([91.0]).degenerate  # one seed: no interval, which is not the same thing


def test_interactions_by_hand_in_every_output(tmp_path):
    """Recipe x method interaction (R·M − base·M) − (R·CE − base·CE), paired over the seeds all four cells have."""
    numbers = {("baseline", "ce"): {0: 90.0, 1: 91.0, 2: 89.5},
               ("cutout", "ce"): {0: 91.0, 1: 92.5, 2: 90.0},            # effect under CE: 1.0, 1.5, 0.5
               ("baseline", "dlb"): {0: 90.5, 1: 91.2, 2: 90.1, 3: 95.0},
               ("cutout", "dlb"): {0: 90.9, 1: 91.4, 2: 90.9, 3: 99.0}}  # under DLB: 0.4, 0.2, 0.8 (+ seed 3)
    records = [make_record(method=method, recipe=recipe, seed=seed, test_acc=acc, planned_seeds=(0, 1, 2, 3))
               for (recipe, method), by_seed in numbers.items() for seed, acc in by_seed.items()]
    out = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", str(write_records(tmp_path / "exp", records)),
                 "--out", str(out)]) == 0
    # interaction per seed: -0.6, -1.3, +0.3 -> mean -0.5333, s = 0.80208, half-width 4.302653 s / sqrt 3 = 1.99248
    (row,) = read_csv(out / "results.csv", kind="interaction")
    assert (row["recipe"], row["method"], row["baseline_recipe"]) == ("cutout", "dlb", "baseline")
    assert float(row["interaction"]) == pytest.approx(-0.533333, abs=1e-5)
    assert float(row["interaction_half_width"]) == pytest.approx(1.992479, abs=1e-5)
    assert row["interaction_n"] == "3" and row["interaction_seeds"] == "0 1 2"  # seed 3 lacks its CE partners
    assert float(row["effect_under_method"]) == pytest.approx(0.466667, abs=1e-5)
    assert float(row["effect_under_ce"]) == pytest.approx(1.0)
    assert row["interaction_significant"] == "False" and row["interaction_holm_significant"] == "False"
    readme = (out / "README.md").read_text()
    assert "### Compatibility: does the recipe's gain over baseline survive the method?" in readme
    assert "| cifar_resnet8 | cutout | -0.53 ± 1.99 (n=3)<br>effect +0.47 under dlb, +1.00 under ce |" in readme
    assert "This table shows 1 interaction interval (0 degenerate, 0 from one seed); Holm–Bonferroni covers" in readme
    entry = json.loads((out / row["entry"]).read_text())
    assert entry["interaction"]["interaction"]["seeds"] == [0, 1, 2]
    assert entry["interaction"]["interaction"]["differences"] == pytest.approx([-0.6, -1.3, 0.3])
    assert entry["by_metric"]["test_nll"]["interaction"]["interaction"]["mean"] == pytest.approx(0.0)
    view = metric_view((out / "index.html").read_text())
    assert view.count('<svg class="compat"') == 1 and "-0.53" in view


def test_degenerate_gain_is_reported_as_such_everywhere(tmp_path):
    records = [make_record(method="ce", seed=s, test_acc=a) for s, a in CE.items()]
    records += [make_record(method="dlb", seed=s, test_acc=a + 1.0) for s, a in CE.items()]  # +1.00 on every seed
    out = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", str(write_records(tmp_path / "exp", records)),
                 "--out", str(out)]) == 0
    (dlb,) = [r for r in read_csv(out / "results.csv") if r["method"] == "dlb"]
    assert (dlb["gain_degenerate"], dlb["gain_significant"], dlb["gain_p"], dlb["gain_holm_p"]) == (
        "True", "False", "", "")
    readme = (out / "README.md").read_text()
    assert "+1.00 ± 0.00 degenerate (n=3)" in readme and "▲" not in readme.split("## quickstart")[1].split("##")[0]
    assert "1 gain-over-CE interval (1 degenerate, 0 from one seed); Holm–Bonferroni covers the 0 tested" in readme
    entry = json.loads((out / dlb["entry"]).read_text())
    assert entry["gain_vs_ce"]["degenerate"] is True and entry["gain_vs_ce"]["significant"] is False
    assert entry["gain_vs_ce"]["holm_significant"] is False
    view = metric_view((out / "index.html").read_text())
    assert "+1.00 ± 0.00 degenerate" in view and 'class="gain up' not in view


@pytest.mark.parametrize("spread,expected", [
    (0.05, "Resolved: all 1 gain-over-CE intervals are within ±0.6 percentage points."),
    (2.0, "Too wide to conclude: 1 of 1 gain-over-CE intervals are wider than ±0.6 percentage points"),
])
def test_the_page_says_whether_its_intervals_are_narrow_enough_to_conclude(tmp_path, spread, expected):
    # DLB - CE per seed: 0.3, 0.3 + spread, 0.3 - spread: half-width = t(0.975, 2) * spread / sqrt(3).
    gains = {0: 0.3, 1: 0.3 + spread, 2: 0.3 - spread}
    records = [make_record(method="ce", seed=s, test_acc=a) for s, a in CE.items()]
    records += [make_record(method="dlb", seed=s, test_acc=a + gains[s]) for s, a in CE.items()]
    out = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", str(write_records(tmp_path / "exp", records)),
                 "--out", str(out)]) == 0
    readme = (out / "README.md").read_text()
    assert expected in readme
    assert ("cannot tell any of its differences from no difference" in readme) == (spread > 1)
    assert expected in metric_view((out / "index.html").read_text())
    assert "Too wide" not in metric_view((out / "index.html").read_text(), "test_nll")  # NLL has no target


def test_lower_is_better_metrics_mark_a_drop_as_better(tmp_path):
    records = standard_records()
    for record in records:  # DLB's NLL 0.05 lower on every seed but one: a real improvement
        record["test_nll"] = 0.40 - (0.05 if record["method"] == "dlb" else 0.0) + 0.01 * record["seed"] ** 2 * (
            record["method"] == "dlb")
    board = aggregate(load_records(str(write_records(tmp_path / "exp", records))), metric="test_nll")
    dlb = next(c for c in board.cells if c.method == "dlb")
    assert dlb.gain.interval.mean == pytest.approx(-0.05 + 0.05 / 3)  # differences -0.05, -0.04, -0.01
    from augbench.leaderboard.text import gain_mark

    assert gain_mark(dlb.gain, board.metric_info) == ("▲" if dlb.gain.significant else "")
    strong = paired_gain({0: 0.30, 1: 0.31, 2: 0.29}, {0: 0.40, 1: 0.42, 2: 0.40})
    assert strong.significant and gain_mark(strong, board.metric_info) == "▲"
    assert gain_mark(strong) == "▼"  # the same drop in accuracy is a loss
    assert board.metric_order() == ["test_nll", "test_acc", "test_acc_at_best_val", "test_ece"]


def test_budgets_side_by_side_pair_samples_runs_with_ce_at_epochs(tmp_path):
    """CE forwards each sample once, so its epochs runs are its samples runs: DLB@samples pairs with them."""
    records = standard_records()  # CE and DLB at budget epochs; DLB forwards twice CE's samples
    dlb_samples = {0: 90.5, 1: 91.6, 2: 89.7}  # differences from CE 0.5, 0.1, 0.7
    records += [make_record(method="dlb", seed=s, test_acc=a, budget="samples", forward_samples=10 * 10000)
                for s, a in dlb_samples.items()]
    out = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", str(write_records(tmp_path / "exp", records)),
                 "--out", str(out)]) == 0
    rows = {r["budget"]: r for r in read_csv(out / "results.csv") if r["method"] == "dlb"}
    assert rows["samples"]["gain_ce_budget"] == "epochs" and rows["epochs"]["gain_ce_budget"] == "epochs"
    assert float(rows["samples"]["gain_vs_ce"]) == pytest.approx(1.3 / 3)
    assert rows["samples"]["gain_n"] == "3"
    readme = (out / "README.md").read_text()
    section = readme.split("## Equal epochs and equal forward samples: quickstart: fashion_mnist")[1]
    assert "| backbone | recipe | dlb at equal epochs | dlb at equal forward samples |" in section
    # s = 0.3055, half-width 0.759; Holm over the 2 gains of this comparison
    assert ("| cifar_resnet8 | baseline | +1.10 ± 0.25 ▲ (Holm ▲) (n=3)<br>2.00× CE's forward samples | "
            "+0.43 ± 0.76 (n=3)<br>1.00× CE's forward samples |") in section
    assert "This table shows 2 gain-over-CE intervals" in section
    assert "its runs at budget 'epochs' are its runs at budget 'samples'" in readme
    view = metric_view((out / "index.html").read_text())
    assert view.count('class="sidebyside"') == 1 and "1.00× CE&#x27;s forward samples" in view


def test_a_one_forward_method_s_equal_epochs_runs_answer_at_equal_samples_too(tmp_path):
    """LSR forwards each sample once, as CE does: the grid runs it once, under epochs, and the side-by-side
    table shows that gain in both columns, says which runs it is, and counts it once for Holm."""
    records = standard_records()
    records += [make_record(method="dlb", seed=s, test_acc=a, budget="samples", forward_samples=10 * 10000)
                for s, a in {0: 90.5, 1: 91.6, 2: 89.7}.items()]
    records += [make_record(method="lsr", seed=s, test_acc=a) for s, a in {0: 90.2, 1: 91.3, 2: 89.4}.items()]
    records += [make_record(method="pskd", seed=s, test_acc=a, forward_samples=10 * 10000 + 1)  # not CE's count
                for s, a in {0: 90.2, 1: 91.3, 2: 89.4}.items()]
    out = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", str(write_records(tmp_path / "exp", records)),
                 "--out", str(out)]) == 0
    section = (out / "README.md").read_text().split("## Equal epochs and equal forward samples")[1]
    row = next(line for line in section.splitlines() if line.startswith("| cifar_resnet8 | baseline |"))
    lsr_epochs, lsr_samples, pskd_epochs, pskd_samples = row.strip("| ").split(" | ")[4:8]
    assert lsr_epochs.endswith("1.00× CE's forward samples")
    assert lsr_samples == lsr_epochs + ": the equal-epochs runs"
    assert pskd_epochs.endswith("1.00× CE's forward samples") and pskd_samples == "–"  # more than CE's: no answer
    assert "This table shows 4 gain-over-CE intervals" in section  # DLB twice, LSR once, PS-KD once
    view = metric_view((out / "index.html").read_text())
    assert view.count("the equal-epochs runs") == 1


def test_estimate_and_actual_wall_time_on_the_page(tmp_path):
    records = standard_records() + [make_record(method="dlb", seed=0, phase="search")]
    exp = write_records(tmp_path / "exp", records)
    (exp / "estimate.json").write_text(json.dumps({"experiment": "quickstart", "seconds": 600.0, "runs": 7,
                                                   "device": "cpu (x86_64, 2 cores, 2 threads)",
                                                   "created_at": "2025-01-01T09:59:00+00:00"}))
    out = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", str(exp), "--out", str(out)]) == 0
    readme = (out / "README.md").read_text()
    # Each run's finished_at - started_at: 30 s, 90 s, 150 s per method and the search trial's 30 s = 570 s.
    assert ("quickstart: estimated 10.0 min for at most 7 runs on cpu (x86_64, 2 cores, 2 threads) (augbench "
            "tune --dry-run, 2025-01-01T09:59:00+00:00); actual 9.5 min over 7 runs") in readme
    assert "estimate/actual 1.05" in readme
    assert "estimated 10.0 min for at most 7 runs" in (out / "index.html").read_text()


# -- aggregation -----------------------------------------------------------------------------------

def test_settings_are_never_pooled(tmp_path):
    records = standard_records()
    records += [make_record(method="ce", seed=s, test_acc=70.0, epochs=20) for s in (0, 1, 2)]
    records += [make_record(method="ce", seed=s, test_acc=60.0, budget="samples") for s in (0, 1, 2)]
    records += [make_record(method="ce", seed=s, test_acc=50.0, noise={"kind": "sym", "rate": 0.4,
                                                                        "flipped_fraction": 0.36}) for s in (0, 1, 2)]
    board = aggregate(load_records(str(write_records(tmp_path / "exp", records))))
    means = sorted(round(c.interval.mean, 6) for c in board.cells if c.method == "ce")
    assert means == [50.0, 60.0, 70.0, round(sum(CE.values()) / 3, 6)]
    assert len(board.tables) == 4
    assert {t.setting.label_noise for t in board.tables} == {"clean", "sym:0.4"}


def test_experiments_of_one_group_share_tables_and_others_do_not(tmp_path):
    """A map split into experiment files (each short enough for one sitting) builds one set of tables."""
    part_a = [dict(r, experiment="map_a", group="map") for r in standard_records("baseline")]
    part_b = [dict(r, experiment="map_b", group="map") for r in standard_records("cutout")]
    alone = [dict(r, experiment="other") for r in standard_records("mixup")]
    write_records(tmp_path / "runs" / "map_a", part_a)
    write_records(tmp_path / "runs" / "map_b", part_b)
    write_records(tmp_path / "runs" / "other", alone)
    board = aggregate(load_records(str(tmp_path / "runs")))
    recipes = {t.setting.experiment: set(t.recipes) for t in board.tables}
    assert recipes == {"map": {"baseline", "cutout"}, "other": {"mixup"}}
    # The interaction of cutout with DLB pairs the runs of the two files by seed.
    (table,) = [t for t in board.tables if t.setting.experiment == "map"]
    assert ("cifar_resnet8", "cutout", "dlb") in table.interactions


def test_from_repeated_pools_the_parts_given_and_no_others(tmp_path, capsys):
    """Only the finished parts of a map are published while another part is still running beside them."""
    write_records(tmp_path / "runs" / "map_a", [dict(r, experiment="map_a", group="map")
                                               for r in standard_records("baseline")])
    write_records(tmp_path / "runs" / "map_b", [dict(r, experiment="map_b", group="map")
                                               for r in standard_records("cutout")])
    running = [dict(r, experiment="map_c", group="map") for r in standard_records("mixup")[:1]]
    write_records(tmp_path / "runs" / "map_c", running)
    parts = [str(tmp_path / "runs" / "map_a"), str(tmp_path / "runs" / "map_b")]
    out = tmp_path / "board"
    # the same part twice counts once
    argv = ["leaderboard", "build", "--from", parts[0], "--from", parts[1], "--from", parts[0], "--out", str(out)]
    assert main(argv) == 0
    assert "4 cells in 1 table(s) from 12 runs (0 incomplete)" in capsys.readouterr().out
    rows = read_csv(out / "results.csv")
    assert {r["recipe"] for r in rows} == {"baseline", "cutout"}
    readme = (out / "README.md").read_text()
    assert f"--from {parts[0]} --from {parts[1]} --from {parts[0]}" in readme
    assert f"{parts[0]}, {parts[1]}" in readme  # the source, as the page names it
    # the pooled parts give what their parent folder gives without the running part
    board = aggregate(merge([load_records(p) for p in parts]))
    (table,) = board.tables
    assert ("cifar_resnet8", "cutout", "dlb") in table.interactions


def test_search_trials_are_left_out_and_plain_runs_accepted(tmp_path):
    records = standard_records()
    records.append(make_record(method="ce", seed=0, test_acc=10.0, phase="search"))
    records.append(make_record(method="ce", seed=0, test_acc=55.0, phase=None, recipe="plain"))
    loaded = load_records(str(write_records(tmp_path / "exp", records)))
    assert loaded.skipped == 1
    board = aggregate(loaded)
    assert {c.recipe for c in board.cells} == {"baseline", "plain"}
    assert all(c.interval.mean > 50 for c in board.cells)


def test_failed_and_missing_runs_make_a_cell_incomplete_everywhere(tmp_path):
    records = [make_record(method="ce", seed=s, test_acc=a) for s, a in CE.items()]
    records += [make_record(method="dlb", seed=0, test_acc=91.0),
                make_record(method="dlb", seed=1, status="failed")]  # seed 2 never ran
    out = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", str(write_records(tmp_path / "exp", records)),
                 "--out", str(out)]) == 0
    rows = {r["method"]: r for r in read_csv(out / "results.csv")}
    assert rows["ce"]["complete"] == "True" and rows["ce"]["status"] == "complete"
    assert rows["dlb"]["complete"] == "False"
    assert rows["dlb"]["status"] == "incomplete: 1/3 seeds, 1 failed, 1 missing"
    assert (rows["dlb"]["n"], rows["dlb"]["gain_n"], rows["dlb"]["half_width"]) == ("1", "1", "")
    assert float(rows["dlb"]["gain_vs_ce"]) == pytest.approx(1.0)
    assert rows["dlb"]["gain_significant"] == "False"  # one pair: no interval, no mark
    entry = json.loads((out / rows["dlb"]["entry"]).read_text())
    assert entry["missing_seeds"] == [2] and entry["finished_seeds"] == [0]
    assert entry["failed_runs"][0]["seed"] == 1 and "non-finite" in entry["failed_runs"][0]["reason"]
    readme = (out / "README.md").read_text()
    assert "⚠ incomplete: 1/3 seeds, 1 failed, 1 missing" in readme
    assert "seed 1 failed: non-finite loss" in readme
    page = (out / "index.html").read_text()
    assert metric_view(page).count('class="num incomplete"') == 1
    assert page.count('class="num incomplete"') == 4  # one view per metric: accuracy (2), NLL, ECE


def test_duplicate_runs_keep_the_finished_one(tmp_path):
    records = standard_records() + [make_record(method="dlb", seed=1, status="failed")]
    board = aggregate(load_records(str(write_records(tmp_path / "exp", records))))
    dlb = next(c for c in board.cells if c.method == "dlb")
    assert dlb.complete and dlb.values()[1] == DLB[1]
    assert "1 duplicate run(s), latest kept" in dlb.status_text


def test_tables_gains_and_provenance_in_every_output(tmp_path):
    records = standard_records() + standard_records(recipe="cutout")
    out = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", str(write_records(tmp_path / "exp", records)),
                 "--out", str(out)]) == 0
    rows = read_csv(out / "results.csv")
    assert len(rows) == 4
    dlb = next(r for r in rows if r["method"] == "dlb" and r["recipe"] == "cutout")
    assert float(dlb["mean"]) == pytest.approx(sum(DLB.values()) / 3)
    assert float(dlb["gain_vs_ce"]) == pytest.approx(1.1)
    assert float(dlb["gain_half_width"]) == pytest.approx(0.248414, abs=1e-6)
    assert dlb["gain_significant"] == "True" and dlb["planned_seeds"] == "0 1 2"
    readme = (out / "README.md").read_text()
    assert "| backbone | recipe | ce | dlb |" in readme
    # s = 1.3204, t = 4.302653; p = 0.0027 for both gains, Holm over 2: 0.0055
    assert "91.27 ± 3.28 (n=3)<br>+1.10 ± 0.25 ▲ (Holm ▲) (n=3)" in readme
    assert "augbench tune recipes/experiments/quickstart.yaml" in readme  # how it was run
    assert f"augbench leaderboard build --from {tmp_path / 'exp'} --out {out}" in readme
    assert "torch 2.14.1" in readme and "cpu (x86_64, 2 cores, 2 threads)" in readme
    entries = sorted((out / "entries").glob("*.json"))
    assert len(entries) == 4
    entry = json.loads((out / dlb["entry"]).read_text())
    assert entry["gain_vs_ce"]["seeds"] == [0, 1, 2]
    provenance = entry["provenance"]
    assert provenance["experiments"] == ["quickstart"] and provenance["planned_seeds"] == [0, 1, 2]
    assert provenance["hyperparameters"][0]["lr"] == 0.1 and provenance["tuned_params"] == [{"lr": 0.1}]
    assert provenance["reproduce"][2]["command"].endswith("--method dlb --epochs 10 --seed 2")
    assert provenance["git_commits"] and provenance["devices"] and provenance["versions"]
    page = (out / "index.html").read_text()
    view = metric_view(page)
    assert view.count('<svg class="heatmap"') == 1 and view.count('<svg class="scatter"') == 2
    assert view.count('<svg class="compat"') == 1  # cutout x dlb
    assert "+1.10▲H" in view  # the heatmap cell of a significant gain that survives Holm


@pytest.mark.parametrize("searched_methods,expected", [
    ({"ce", "dlb"}, "tuned per cell on a validation split"),
    ({"dlb"}, "for the cells whose method had a search space"),
    (set(), "Nothing was tuned"),
])
def test_protocol_text_says_whether_anything_was_searched(tmp_path, searched_methods, expected):
    records = standard_records()
    for record in records:
        record["tuned_params"] = {"lr": 0.05} if record["method"] in searched_methods else {}
    out = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", str(write_records(tmp_path / "exp", records)),
                 "--out", str(out)]) == 0
    for page in ("README.md", "index.html"):
        text = (out / page).read_text()
        assert expected in text
        assert ("tuned per cell" in text) == (searched_methods == {"ce", "dlb"})


def test_a_tuned_cell_shows_the_values_its_search_chose_and_how(tmp_path):
    records = standard_records()
    for record in records:
        record["tuned_params"] = {"lr": 0.043216, "temperature": 3.5} if record["method"] == "dlb" else {}
        record["experiment"] = "part_one"
    source = write_records(tmp_path / "exp", records)
    # the resolved experiment that tune writes beside its runs
    (source / "experiment.yaml").write_text(yaml.safe_dump({"name": "part_one", "search": {
        "trials": 8, "seed": 0, "sampler": "qmc", "pruner": {"type": "median", "startup_trials": 3, "warmup_epochs": 6},
        "space": {"dlb": {"lr": {"type": "float", "low": 0.02, "high": 0.4, "log": True}}}}}))
    out = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", str(source), "--out", str(out)]) == 0
    how = "tuned: lr 0.0432, temperature 3.5 (8 qmc trials, median pruner from epoch 6 after 3 finished trials)"
    readme = (out / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| cifar_resnet8 | baseline |"))
    ce, dlb = row.split(" | ")[2:4]
    assert how in dlb and "tuned" not in ce
    view = metric_view((out / "index.html").read_text())
    cells = view.split('<td class="num')
    dlb_cell = next(c for c in cells if 'data-method="dlb"' in c.split(">")[0])
    ce_cell = next(c for c in cells if 'data-method="ce"' in c.split(">")[0])
    assert f">{how}</div>" in dlb_cell and "tuned" not in ce_cell


def test_an_interaction_between_cells_of_different_searches_is_flagged(tmp_path):
    """Baseline cells tuned by one search, Cutout cells by another: the compatibility cell says so."""
    def search(trials):
        return {"trials": trials, "seed": 0, "sampler": "qmc",
                "space": {"ce": {"lr": {"type": "float", "low": 0.02, "high": 0.4, "log": True}}}}

    def part(name, recipe, trials):
        records = standard_records(recipe=recipe)
        for record in records:
            record.update(experiment=name, group="tuned_map", tuned_params={"lr": 0.1})
        folder = write_records(tmp_path / name, records)
        (folder / "experiment.yaml").write_text(yaml.safe_dump({"name": name, "search": search(trials)}))
        return folder

    for cutout_trials, flagged in ((8, False), (6, True)):
        out = tmp_path / f"board{cutout_trials}"
        sources = [part(f"plain{cutout_trials}", "baseline", 8), part(f"cut{cutout_trials}", "cutout", cutout_trials)]
        assert main(["leaderboard", "build", "--from", str(sources[0]), "--from", str(sources[1]),
                     "--out", str(out)]) == 0
        readme = (out / "README.md").read_text()
        row = next(line for line in readme.splitlines() if line.startswith("| cifar_resnet8 | cutout |")
                   and "effect" in line)
        assert ("not all tuned by the same search" in row) is flagged
        (entry,) = [json.loads(p.read_text()) for p in (out / "entries").glob("*cutout-dlb*.json")]
        assert ("note" in entry["interaction"]) is flagged
        svg = metric_view((out / "index.html").read_text()).split('<svg class="compat"')[1].split("</svg>")[0]
        assert ("⚠ its four cells were not all tuned by the same search" in svg) is flagged


def test_a_search_is_named_with_its_sampler_and_pruner():
    assert search_text({"trials": 6, "pruner": {"type": "median", "startup_trials": 2, "warmup_epochs": 2}}) == \
        "6 tpe trials, median pruner from epoch 2 after 2 finished trials"
    assert search_text({"trials": 4, "sampler": "random", "pruner": "none"}) == "4 random trials, no pruner"
    assert search_text({"trials": 9, "pruner": {"type": "hyperband", "min_epochs": 2}}) == \
        "9 tpe trials, Hyperband pruner from epoch 2"
    assert search_text({"trials": 3, "pruner": {"type": "sideways"}}) == "3 tpe trials"


def test_rebuild_replaces_stale_entries_and_keeps_other_files(tmp_path, capsys):
    out = tmp_path / "board"
    first = write_records(tmp_path / "a", standard_records() + standard_records(recipe="cutout"))
    assert main(["leaderboard", "build", "--from", str(first), "--out", str(out)]) == 0
    (out / "CNAME").write_text("kept\n")
    second = write_records(tmp_path / "b", standard_records())
    assert main(["leaderboard", "build", "--from", str(second), "--out", str(out)]) == 0
    assert len(list((out / "entries").glob("*.json"))) == 2
    assert len(read_csv(out / "results.csv")) == 2
    assert (out / "CNAME").read_text() == "kept\n"
    assert sorted(p.name for p in out.iterdir()) == ["CNAME", "README.md", "entries", "index.html", "records",
                                                     "results.csv"]
    before = (out / "index.html").read_text()
    assert main(["leaderboard", "build", "--from", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert (out / "index.html").read_text() == before


# -- records/: a leaderboard rebuilt, and extended, from what it publishes -----------------------------

def _part(root, name, recipe, noise=None):
    """An experiment folder of group "map" as tune leaves it: final runs, a search trial, its resolved definition
    and saved estimate."""
    records = [dict(r, experiment=name, group="map", label_noise=noise(r["seed"]) if noise else None,
                    tuned_params={"lr": 0.05} if r["method"] == "dlb" else {})
               for r in standard_records(recipe) + [make_record(method="dlb", seed=7, phase="search")]]
    folder = write_records(Path(root) / name, records)
    (folder / "experiment.yaml").write_text(yaml.safe_dump({"name": name, "group": "map", "search": {
        "trials": 4, "seed": 0, "sampler": "qmc", "space": {"dlb": {"lr": {"type": "float", "low": 0.02,
                                                                           "high": 0.4, "log": True}}}}}))
    (folder / "estimate.json").write_text(json.dumps({"experiment": name, "seconds": 600.0, "runs": 7,
                                                      "created_at": "2025-01-01T09:59:00+00:00"}))
    return folder


def _cost_line(out, name):
    return next(line for line in (out / "README.md").read_text().splitlines() if line.startswith(f"- {name}: "))


def test_a_leaderboard_rebuilds_from_its_own_records_and_grows_by_a_new_part(tmp_path, capsys):
    one = _part(tmp_path / "runs", "part_one", "baseline")
    board = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", str(one), "--out", str(board)]) == 0
    lines = [json.loads(line) for line in (board / "records" / "part_one" / "records.jsonl").read_text().splitlines()]
    assert [r.get("phase") for r in lines] == ["final"] * 6 + ["search"]  # the search trial is kept for the cost
    assert sorted(p.name for p in (board / "records" / "part_one").iterdir()) == [
        "estimate.json", "experiment.yaml", "records.jsonl"]
    published_csv, published_cost = (board / "results.csv").read_text(), _cost_line(board, "part_one")
    shutil.rmtree(tmp_path / "runs")  # the experiment folders are gone; the published records stand in for them

    again = tmp_path / "again"
    assert main(["leaderboard", "build", "--from", str(board / "records"), "--out", str(again)]) == 0
    assert (again / "results.csv").read_text() == published_csv
    assert _cost_line(again, "part_one") == published_cost and "actual 16.5 min over 7 runs" in published_cost
    assert "(4 qmc trials" in (again / "README.md").read_text()

    # A new part joins the published one, written over the folder it is read from.
    two = _part(tmp_path / "new", "part_two", "cutout")
    assert main(["leaderboard", "build", "--from", str(board / "records"), "--from", str(two),
                 "--out", str(board)]) == 0
    rows = read_csv(board / "results.csv")
    assert {(r["recipe"], r["method"]) for r in rows} == {(rec, m) for rec in ("baseline", "cutout")
                                                          for m in ("ce", "dlb")}
    assert len(read_csv(board / "results.csv", kind="interaction")) == 1
    assert sorted(p.name for p in (board / "records").iterdir()) == ["part_one", "part_two"]
    # The same command again (its part's records now also in records/): the same page, no record twice.
    published = {name: (board / name).read_text() for name in ("results.csv", "records/part_two/records.jsonl")}
    assert main(["leaderboard", "build", "--from", str(board / "records"), "--from", str(two),
                 "--out", str(board)]) == 0
    assert {name: (board / name).read_text() for name in published} == published
    # Building from one part drops the other's records with its cells.
    assert main(["leaderboard", "build", "--from", str(board / "records" / "part_two"), "--out", str(board)]) == 0
    assert sorted(p.name for p in (board / "records").iterdir()) == ["part_two"]
    assert {r["recipe"] for r in read_csv(board / "results.csv")} == {"cutout"}


def test_plain_runs_are_republished_beside_the_experiments(tmp_path, capsys):
    plain = write_records(tmp_path / "plain", [make_record(method=m, seed=s, phase=None) for m in ("ce", "dlb")
                                               for s in (0, 1)])
    board = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", str(plain), "--out", str(board)]) == 0
    assert len((board / "records" / "records.jsonl").read_text().splitlines()) == 4
    again = tmp_path / "again"
    assert main(["leaderboard", "build", "--from", str(board / "records"), "--out", str(again)]) == 0
    assert (again / "results.csv").read_text() == (board / "results.csv").read_text()


def test_an_experiment_name_never_writes_outside_records(tmp_path, capsys):
    from augbench.leaderboard.render_records import folder_name

    assert folder_name("fmnist_map_tuned_3") == "fmnist_map_tuned_3"
    assert folder_name("../../evil") == ".._.._evil" and folder_name("..") == "__" and folder_name("a/b c") == "a_b_c"
    records = [dict(r, experiment="../escape") for r in standard_records()]
    board = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", str(write_records(tmp_path / "exp", records)), "--out",
                 str(board)]) == 0
    assert [p.name for p in (board / "records").iterdir()] == [".._escape"]
    assert not (board / "escape").exists() and not (tmp_path / "escape").exists()


def test_a_bad_line_in_a_records_file_is_named_and_nothing_is_written(tmp_path, capsys):
    folder = tmp_path / "records" / "part_one"
    folder.mkdir(parents=True)
    (folder / "records.jsonl").write_text(json.dumps(make_record()) + "\n{not json\n")
    out = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", str(tmp_path / "records"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{folder / 'records.jsonl'} line 2 is not a JSON record" in err and "one result record" in err
    assert not out.exists()


def test_records_recovered_from_an_older_page_rebuild_its_numbers(tmp_path):
    """scripts/recover_records.py: a page published without records/ gets them back from its entries and README."""
    noise = lambda seed: {"kind": "sym", "rate": 0.4, "flipped_fraction": 0.39 + seed / 1000}  # noqa: E731
    parts = [_part(tmp_path / "runs", "part_one", "baseline", noise), _part(tmp_path / "runs", "part_two", "cutout",
                                                                             noise)]
    board = tmp_path / "board"
    assert main(["leaderboard", "build", *[a for p in parts for a in ("--from", str(p))], "--out", str(board)]) == 0
    published_csv, published_cost = (board / "results.csv").read_text(), _cost_line(board, "part_two")
    shutil.rmtree(board / "records")  # as pages were published before builds kept the records
    shutil.rmtree(tmp_path / "runs")
    script = [sys.executable, str(REPO / "scripts" / "recover_records.py"), str(board), "--commit", "abc1234"]
    done = subprocess.run(script, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "recovered 12 final runs' records of 2 experiments" in done.stdout
    record = json.loads((board / "records" / "part_one" / "records.jsonl").read_text().splitlines()[0])
    assert record["label_noise"]["flipped_fraction"] == 0.39 and record["slot"] == "seed-0"
    assert record["recovered_from"].startswith("board/entries/") and "at commit abc1234" in record["recovered_from"]
    again = tmp_path / "again"
    assert main(["leaderboard", "build", "--from", str(board / "records"), "--out", str(again)]) == 0
    assert (again / "results.csv").read_text() == published_csv
    assert _cost_line(again, "part_two") == (f"{published_cost} (as published; from board/README.md at commit "
                                             f"abc1234)")
    assert "(4 qmc trials" in (again / "README.md").read_text()
    # Run again, it refuses to overwrite what is there.
    assert subprocess.run(script, capture_output=True, text=True, cwd=tmp_path).returncode == 2


def test_more_seeds_from_a_later_part_pool_into_the_same_cells_and_survive_recovery(tmp_path):
    """A part that runs seeds 3-5 of cells an earlier part ran with seeds 0-2 (the map's fmnist_map_seeds_*):
    one cell of 6 seeds, gains paired over the seeds both sides have, and records/ recovered per run."""
    accuracy = {0: 90.0, 1: 91.5, 2: 89.0, 3: 90.6, 4: 91.1, 5: 89.9}
    first = [make_record(method=m, seed=s, test_acc=accuracy[s] + (m == "dlb"), recipe=r, experiment="first",
                         group="map", planned_seeds=(0, 1, 2))
             for r in ("baseline", "cutout") for m in ("ce", "dlb") for s in (0, 1, 2)]
    more = [make_record(method=m, seed=s, test_acc=accuracy[s] + 0.5 * (m == "lsr"), recipe="cutout",
                        experiment="more", group="map", planned_seeds=(3, 4, 5))
            for m in ("ce", "lsr") for s in (3, 4, 5)]
    runs = tmp_path / "runs"
    board = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", str(write_records(runs / "first", first)), "--from",
                 str(write_records(runs / "more", more)), "--out", str(board)]) == 0
    rows = {(r["recipe"], r["method"]): r for r in read_csv(board / "results.csv")}
    ce = rows[("cutout", "ce")]
    assert (ce["n"], ce["planned_seeds"], ce["complete"]) == ("6", "0 1 2 3 4 5", "True")
    assert rows[("cutout", "dlb")]["gain_n"] == "3" and float(rows[("cutout", "dlb")]["gain_vs_ce"]) == \
        pytest.approx(1.0)
    assert rows[("cutout", "lsr")]["gain_n"] == "3" and rows[("cutout", "lsr")]["complete"] == "True"
    (interaction,) = [r for r in read_csv(board / "results.csv", kind="interaction") if r["method"] == "dlb"]
    assert interaction["interaction_n"] == "3"
    entry = json.loads((board / ce["entry"]).read_text())
    assert entry["provenance"]["experiments"] == ["first", "more"] and "differ" not in entry["status"]

    published = (board / "results.csv").read_text()
    shutil.rmtree(board / "records")
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "recover_records.py"), str(board)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    again = tmp_path / "again"
    assert main(["leaderboard", "build", "--from", str(board / "records"), "--out", str(again)]) == 0
    assert (again / "results.csv").read_text() == published
    assert sorted(p.name for p in (board / "records").iterdir()) == ["first", "more"]


def test_notes_appear_under_the_introduction_of_both_pages(tmp_path, capsys):
    notes = tmp_path / "pilot.md"
    notes.write_text("## How the protocol was chosen\n\n| candidate | CE |\n|---|---|\n| r8-54k-8ep <b> | 91.4 |\n")
    out = tmp_path / "board"
    source = write_records(tmp_path / "exp", standard_records())
    assert main(["leaderboard", "build", "--from", str(source), "--out", str(out), "--notes", str(notes)]) == 0
    readme = (out / "README.md").read_text()
    assert "## How the protocol was chosen" in readme and "| r8-54k-8ep <b> | 91.4 |" in readme
    assert readme.index("How the protocol was chosen") < readme.index("## quickstart")
    assert f"--notes {notes}" in readme  # the build command that is recorded
    page = (out / "index.html").read_text()
    assert "r8-54k-8ep &lt;b&gt;" in page


@pytest.mark.parametrize("notes", ["missing.md", "empty.md"])
def test_unreadable_or_empty_notes_exit_2_and_write_nothing(tmp_path, capsys, notes):
    (tmp_path / "empty.md").write_text("  \n")
    out = tmp_path / "board"
    source = write_records(tmp_path / "exp", standard_records())
    path = tmp_path / notes
    assert main(["leaderboard", "build", "--from", str(source), "--out", str(out), "--notes", str(path)]) == 2
    assert f"--notes {path}" in capsys.readouterr().err
    assert not out.exists()


# -- sources ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["{tmp}/nowhere", "ftp:/x", "wandb:just-a-project", "{tmp}/empty",
                                    "sqlite:///{tmp}/missing.db", "{tmp}/search-only", "{tmp}/broken"])
def test_bad_source_exits_2_names_from_and_writes_nothing(tmp_path, capsys, monkeypatch, source):
    (tmp_path / "empty").mkdir()
    write_records(tmp_path / "search-only", [make_record(phase="search")])
    (tmp_path / "broken" / "run").mkdir(parents=True)
    (tmp_path / "broken" / "run" / "result.json").write_text('{"dataset": ')
    source = source.replace("{tmp}", str(tmp_path))
    out = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", source, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--from {source}" in err
    assert not out.exists()
    assert not (tmp_path / "missing.db").exists()
    if source.endswith("nowhere"):
        assert "wandb:ENTITY/PROJECT" in err and "Optuna storage" in err and "journal file" in err and "folder" in err


def test_record_without_a_required_field_is_named(tmp_path, capsys):
    record = make_record()
    del record["method"]
    exp = write_records(tmp_path / "exp", [record])
    assert main(["leaderboard", "build", "--from", str(exp), "--out", str(tmp_path / "board")]) == 2
    err = capsys.readouterr().err
    assert "lacks field 'method'" in err and "result.json" in err


def _fill_storage(storage, records, definition):
    """Lays records out as ``augbench tune`` does (see augbench/tune/storage.py): an experiment study, one study
    per cell and phase, one trial per slot with the record as user attribute."""
    import optuna
    from optuna.trial import TrialState

    from augbench.tune.storage import KIND_CELL, KIND_EXPERIMENT, RECORD, study_name

    def create(name, attrs):
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
        for key, value in attrs.items():
            study.set_user_attr(key, value)
        return study

    create(definition["name"], {"kind": KIND_EXPERIMENT, "experiment": definition, "definition_hash": "0" * 16})
    for record in records:
        phase = record.get("phase") or "final"
        study = create(study_name(record["experiment"], record["cell"], phase),
                       {"kind": KIND_CELL, "experiment": record["experiment"], "cell": record["cell"],
                        "phase": phase})
        slot = f"seed-{record['seed']}" if phase == "final" else f"trial-{record['trial_number']}"
        trial = study.ask()
        trial.set_user_attr("slot", slot)
        trial.set_user_attr(RECORD, {**record, "slot": slot})
        if record["status"] == "finished":
            study.tell(trial, record["test_acc"])
        else:
            study.tell(trial, state=TrialState.FAIL)


QUICKSTART = {"name": "quickstart", "dataset": "fashion_mnist", "backbones": ["cifar_resnet8"],
              "recipes": ["baseline"], "methods": ["ce", "dlb"], "final": {"seeds": [0, 1, 2]}}


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_optuna_storage_source_reads_final_records_only(tmp_path, kind):
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if kind == "sqlite":
        url = storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    else:
        url = str(tmp_path / "optuna.journal")
        storage = JournalStorage(JournalFileBackend(url))
    records = standard_records() + [make_record(method="ce", seed=0, phase="search", test_acc=10.0),
                                    make_record(method="dlb", seed=0, status="failed")]  # a retried final run
    _fill_storage(storage, records, QUICKSTART)
    loaded = load_records(url)
    assert loaded.kind == "optuna" and len(loaded.records) == 7
    assert loaded.experiments == {"quickstart": QUICKSTART}
    assert loaded.origins[0].startswith("study quickstart/")
    board = aggregate(loaded)
    dlb = next(c for c in board.cells if c.method == "dlb")
    assert dlb.complete and dlb.gain.interval.mean == pytest.approx(1.1)
    assert board.provenance()["experiment_commands"] == ["augbench tune recipes/experiments/quickstart.yaml"]


def test_experiment_definition_in_provenance_and_no_password_anywhere(tmp_path, capsys):
    exp = write_records(tmp_path / "runs" / "quickstart", standard_records())
    (exp / "experiment.yaml").write_text("name: quickstart\ndataset: fashion_mnist\nrecipes: ['<b>x</b>']\n")
    out = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", str(exp), "--out", str(out)]) == 0
    readme, page = (out / "README.md").read_text(), (out / "index.html").read_text()
    assert "Experiment definition: quickstart" in readme
    assert "```yaml\nname: quickstart\ndataset: fashion_mnist\nrecipes:\n- <b>x</b>\n```" in readme  # code
    assert "- &lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    capsys.readouterr()
    # Nothing listens on port 1: the error names --from, without the password.
    assert main(["leaderboard", "build", "--from", "postgresql://me:s3cret@127.0.0.1:1/none", "--out",
                 str(tmp_path / "pg")]) == 2
    err = capsys.readouterr().err
    assert "--from postgresql://me:***@127.0.0.1:1/none" in err and "s3cret" not in err
    assert not (tmp_path / "pg").exists()


def test_building_imports_nothing_that_trains(tmp_path):
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    journal = str(tmp_path / "optuna.journal")
    _fill_storage(JournalStorage(JournalFileBackend(journal)), standard_records(), QUICKSTART)
    folder = write_records(tmp_path / "exp", standard_records())
    script = ("import sys\nfrom augbench.leaderboard import build\n"
              f"build({str(folder)!r}, {str(tmp_path / 'a')!r})\nbuild({journal!r}, {str(tmp_path / 'b')!r})\n"
              "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'timm', 'torchvision')\n"
              "               or m.startswith(('augbench.engine', 'augbench.methods', 'augbench.tune.worker')))\n"
              "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, timeout=120)
    assert (tmp_path / "b" / "index.html").exists()


@pytest.mark.parametrize("mode", ["offline", "not logged in"])
def test_wandb_source_needs_to_be_online_and_logged_in(tmp_path, capsys, monkeypatch, mode):
    if mode == "offline":
        monkeypatch.setenv("WANDB_MODE", "offline")
    else:
        for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    out = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", "wandb:someone/augbench", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--from wandb:someone/augbench" in err
    assert ("online" if mode == "offline" else "wandb login") in err
    assert not out.exists()


# -- escaping --------------------------------------------------------------------------------------

def test_names_with_html_come_out_escaped(tmp_path):
    records = standard_records(recipe=HOSTILE_RECIPE)
    records += [make_record(method='dl"b</td>', seed=s, recipe=HOSTILE_RECIPE, model="net<b>") for s in (0, 1, 2)]
    records[0]["device"] = "</script><script>alert('device')</script>"
    out = tmp_path / "board"
    assert main(["leaderboard", "build", "--from", str(write_records(tmp_path / "exp", records)),
                 "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    for raw in ("<script>alert", "<img src=x", "</script><script>", "net<b>", 'dl"b</td>', "alert('device')</"):
        assert raw not in page, raw
    assert "&lt;script&gt;alert(&quot;recipe&quot;)&lt;/script&gt;" in page
    assert page.count("<script") == 2  # the data block and the page's own script, nothing else
    data = page.split('<script type="application/json" id="leaderboard-data">')[1].split("</script>")[0]
    assert {c["recipe"] for c in json.loads(data)} == {HOSTILE_RECIPE}
    readme = (out / "README.md").read_text()
    assert "<script>" not in readme and "<img" not in readme and "net<b>" not in readme
    assert "&lt;script&gt;" in readme and "\\|\\*\\[x\\]" in readme
    for path in (out / "entries").iterdir():  # file names stay plain whatever the names hold
        assert all(c.isalnum() or c in "-._" for c in path.name), path.name


# -- from real runs --------------------------------------------------------------------------------

def test_build_from_real_run_folders(tmp_path, capsys):
    from augbench.config import RunConfig
    from augbench.engine import train

    runs = tmp_path / "runs"
    for method in ("ce", "dlb"):
        for seed in (0, 1):
            config = RunConfig(dataset="synthetic", model="cifar_resnet8", method=method, epochs=1, batch_size=64,
                               train_subset=256, lr=0.05, seed=seed)
            train(config, runs / f"{method}-s{seed}", progress=False, log=lambda _: None,
                  command=["augbench", "train", "--dataset", "synthetic", "--method", method, "--seed", str(seed)])
    out = tmp_path / "leaderboard"
    assert main(["leaderboard", "build", "--from", str(runs), "--out", str(out)]) == 0
    assert "4 runs (0 incomplete)" in capsys.readouterr().out
    rows = {r["method"]: r for r in read_csv(out / "results.csv")}
    assert set(rows) == {"ce", "dlb"}
    assert rows["ce"]["n"] == "2" and rows["dlb"]["gain_n"] == "2" and rows["dlb"]["train_size"] == "256"
    assert float(rows["dlb"]["forward_samples_mean"]) > 1.5 * float(rows["ce"]["forward_samples_mean"])
    entry = json.loads((out / rows["dlb"]["entry"]).read_text())
    assert entry["runs"][1]["reproduce"] == "augbench train --dataset synthetic --method dlb --seed 1"
    assert entry["provenance"]["versions"][0]["torch"]
    readme = (out / "README.md").read_text()
    assert "plain augbench train runs" in readme and "Nothing was tuned" in readme


# -- the page in a real browser --------------------------------------------------------------------

def _browser():
    """Playwright driving the system Chromium; in CI a missing browser fails instead of skipping."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("playwright is not installed (pip install -e '.[dev]')")
        pytest.skip("playwright is not installed")
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (scripts/setup-system.sh --tests installs it)")
        pytest.skip("chromium is not installed")
    return sync_playwright


def test_page_in_headless_chromium(tmp_path):
    sync_playwright = _browser()
    records = standard_records() + standard_records(recipe="cutout") + standard_records(recipe=HOSTILE_RECIPE)
    # Make the DLB column order differ from the backbone/recipe order, and add a second backbone and data set.
    for record in records:
        if record["method"] == "dlb" and record["recipe"] != "baseline":
            record["test_acc"] += 3.0 if record["recipe"] == "cutout" else -5.0
    records += [make_record(method=m, seed=s, test_acc=80.0 + s + (m == "dlb"), model="cifar_resnet20")
                for m in ("ce", "dlb") for s in (0, 1)]
    records += [make_record(method="ce", seed=s, test_acc=70.0 + s, dataset="cifar10") for s in (0, 1, 2)]
    records.append(make_record(method="dlb", seed=0, test_acc=72.0, dataset="cifar10"))
    for record in records:  # NLL falls as accuracy rises: DLB's NLL differences are negative, i.e. better
        record["test_nll"] = round(1.0 - record["test_acc"] / 100 + 0.001 * record["seed"] ** 2, 6)
    out = tmp_path / "board"
    build(str(write_records(tmp_path / "exp", records)), out)

    problems, dialogs = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None)
            page.on("pageerror", lambda err: problems.append(str(err)))
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.on("request", lambda request: problems.append(f"request {request.url}")
                    if not request.url.startswith("file://") else None)
            page.goto((out / "index.html").as_uri())
            page.wait_for_load_state("load")

            table = page.locator("[data-metric-view='test_acc'] section.setting",
                                 has_text="fashion_mnist").locator("table.board")
            rows = table.locator("tbody tr")

            def order():
                return [(r.get_attribute("data-model"), r.get_attribute("data-recipe")) for r in rows.all()]

            before = order()
            assert len(before) == 4
            table.locator("thead th[data-method='dlb'] button").click()
            by_dlb = order()
            assert by_dlb != before and sorted(by_dlb) == sorted(before)
            values = [float(v) for v in table.locator("tbody td[data-method='dlb']").evaluate_all(
                "cells => cells.map(c => c.getAttribute('data-value'))")]
            assert values == sorted(values, reverse=True)  # best first
            assert table.locator("thead th[data-method='dlb']").get_attribute("aria-sort") == "descending"
            table.locator("thead th[data-method='dlb'] button").click()
            assert order() == by_dlb[::-1]

            assert page.locator("#shown").inner_text() == "5 of 5 rows shown"
            page.select_option("select[data-filter='recipe']", "cutout")
            assert rows.locator("visible=true").count() == 1
            assert rows.count() == 4
            assert page.locator("#shown").inner_text() == "1 of 5 rows shown"
            page.select_option("select[data-filter='recipe']", "")
            page.select_option("select[data-filter='dataset']", "cifar10")
            assert page.locator("[data-metric-view='test_acc'] section.setting", has_text="fashion_mnist").is_hidden()
            assert page.locator("#shown").inner_text() == "1 of 5 rows shown"
            page.select_option("select[data-filter='dataset']", "")
            page.select_option("select[data-filter='method']", "dlb")
            assert table.locator("td[data-method='ce']").first.is_hidden()
            assert table.locator("td[data-method='dlb']").first.is_visible()
            page.select_option("select[data-filter='method']", "")

            # The metric selector: NLL replaces accuracy everywhere; lower is better, so a drop is marked ▲.
            dlb_baseline = "tbody tr[data-recipe='baseline'][data-model='cifar_resnet8'] td[data-method='dlb']"
            accuracy_text = table.locator(dlb_baseline).inner_text()
            assert accuracy_text.startswith("91.27 ± 3.28")
            page.select_option("select[data-metric-select]", "test_nll")
            assert table.is_hidden()
            nll_table = page.locator("[data-metric-view='test_nll'] section.setting",
                                     has_text="fashion_mnist").locator("table.board")
            assert nll_table.is_visible()
            nll_text = nll_table.locator(dlb_baseline).inner_text()
            assert nll_text != accuracy_text
            # DLB's NLL per seed 0.090, 0.074, 0.103 (mean 0.089); differences from CE -0.010, -0.012, -0.011.
            assert nll_text.startswith("0.089 ± 0.036") and "-0.011 ± 0.002 ▲ (Holm ▲)" in nll_text
            cutout = nll_table.locator("tbody tr[data-recipe='cutout'] td[data-method='dlb'] .gain").inner_text()
            assert cutout.startswith("-0.041") and "▲" in cutout and "▼" not in cutout  # lower NLL: better
            assert page.locator("#shown").inner_text() == "5 of 5 rows shown"
            nll_table.locator("thead th[data-method='dlb'] button").click()  # best (lowest) first
            assert nll_table.locator("thead th[data-method='dlb']").get_attribute("aria-sort") == "ascending"
            values = [float(v) for v in nll_table.locator("tbody td[data-method='dlb']").evaluate_all(
                "cells => cells.map(c => c.getAttribute('data-value'))")]
            assert values == sorted(values)
            page.select_option("select[data-metric-select]", "test_acc")
            assert table.is_visible() and nll_table.is_hidden()

            page.evaluate("window.scrollTo(0, 0)")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "leaderboard.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert dialogs == []
    assert (ARTIFACTS / "leaderboard.png").stat().st_size > 10_000
