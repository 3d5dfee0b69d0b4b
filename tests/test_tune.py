"""The experiment runner end to end: real Optuna storages (journal file, PostgreSQL), real worker processes,
real W&B offline runs read back with W&B's own reader, real optuna-dashboard."""

import functools
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import optuna
import pytest
import yaml

from augbench.cli import main
from augbench.tune.experiment import PARAM_TYPES, PRUNERS
from augbench.tune.samplers import SEARCH_SAMPLERS, build_sampler
from augbench.tune.storage import all_records, final_records, open_storage, redact_url, scrub

TINY = {
    "name": "tiny",
    "dataset": "synthetic",
    "train_subset": 256,
    "val_fraction": 0.1,
    "backbones": ["cifar_resnet8"],
    "recipes": ["baseline"],
    "methods": ["ce", "dlb"],
    "epochs": 2,
    "fixed": {"batch_size": 64, "lr": 0.05},
    "search": {"trials": 3, "seed": 0, "pruner": {"type": "median", "startup_trials": 1, "warmup_epochs": 0},
               "space": {"dlb": {"temperature": {"type": "float", "low": 1.0, "high": 6.0}}}},
    "final": {"seeds": [0, 1]},
    "retries": 1,
    "heartbeat": {"interval": 1, "grace": 3},
}
CONTRACT_FIELDS = ("experiment", "cell", "phase", "trial_number", "tuned_params")
SEARCH_CELL = "synthetic.cifar_resnet8.baseline.dlb.clean"
PLAIN_CELL = "synthetic.cifar_resnet8.baseline.ce.clean"


def write_experiment(folder: Path, **overrides) -> Path:
    data = json.loads(json.dumps(TINY))
    for key, value in overrides.items():
        data[key] = value
    path = folder / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def env_for_subprocess(**extra) -> dict:
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true",
                "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    env.pop("AUGBENCH_STORAGE", None)
    env.update(extra)
    return env


@functools.cache
def opened(storage_name: str):
    """One connection pool per storage for the polling loops below (a journal re-reads its file on each query)."""
    return open_storage(storage_name, must_exist=True)


def trials_by_slot(storage_name: str, experiment: str = "tiny"):
    """{(cell, phase, slot): [(trial number, state name, user attrs), ...]} straight from the storage."""
    storage = opened(storage_name)
    slots = {}
    for study in optuna.get_all_study_summaries(storage, include_best_trial=False):
        attrs = study.user_attrs
        if attrs.get("kind") != "cell" or attrs.get("experiment") != experiment:
            continue
        for t in optuna.load_study(study_name=study.study_name, storage=storage).get_trials():
            key = (attrs["cell"], attrs["phase"], t.user_attrs.get("slot"))
            slots.setdefault(key, []).append((t.number, t.state.name, t.user_attrs))
    return slots


def expected_slots(searched: bool = True, seeds=(0, 1)):
    """The slots of TINY (or of its CE-only variant with ``searched=False``)."""
    slots = {(SEARCH_CELL, "search", f"trial-{k}") for k in range(3)} if searched else set()
    cells = (SEARCH_CELL, PLAIN_CELL) if searched else (PLAIN_CELL,)
    return slots | {(cell, "final", f"seed-{s}") for cell in cells for s in seeds}


def assert_each_slot_complete_once(storage_name: str, expected=None):
    slots = trials_by_slot(storage_name)
    assert set(slots) == (expected or expected_slots())
    for key, attempts in slots.items():
        states = [state for _, state, _ in attempts]
        assert states.count("COMPLETE") + states.count("PRUNED") == 1, (key, states)
        assert states[-1] in ("COMPLETE", "PRUNED"), (key, states)
    return slots


def read_wandb_run(run_folder: Path) -> dict:
    """Records of an offline W&B run, through W&B's own reader of .wandb files (`wandb leet inspect`)."""
    out = subprocess.run(["wandb", "leet", "inspect", "--json", str(run_folder)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    run = {"config": {}, "history": [], "summary": {}, "run": {}}
    for line in out.splitlines():
        rec = json.loads(line)
        if rec["type"] == "run":
            run["run"] = rec["run"]
            run["config"].update(rec["run"].get("config", {}).get("update", {}))
        elif rec["type"] == "config":
            run["config"].update(rec["config"].get("update", {}))
        elif rec["type"] == "history":
            run["history"].append(rec["history"]["item"])
        elif rec["type"] == "summary":
            run["summary"].update(rec["summary"].get("update", {}))
    return run


# -- bad experiment files ------------------------------------------------------------------------

BAD_EXPERIMENTS = [
    ({"name": None}, "field name"),
    ({"epoch": 3}, "unknown field epoch"),
    ({"dataset": "imagenet"}, "field dataset"),
    ({"methods": ["ce", "nope"]}, "field methods[1]"),
    ({"backbones": ["no_such_net"]}, "field backbones[0]"),
    ({"recipes": ["baseline", "no_such_recipe"]}, "field recipes[1]"),
    ({"label_noise": ["gauss:0.3"]}, "field label_noise[0]"),
    ({"val_fraction": 0.0}, "field val_fraction"),
    ({"train_subset": 999999}, "field train_subset"),
    ({"fixed": {"lr": -1}}, "field fixed.lr"),
    ({"fixed": {"nesterov": False}}, "field fixed.nesterov"),
    ({"fixed": {"bf16": "fast"}}, "field fixed.bf16"),
    ({"fixed": {"bf16": 1}}, "field fixed.bf16"),
    ({"search": {"trials": 2, "space": {"dlb": {"tau": {"type": "float", "low": 1, "high": 2}}}}},
     "field search.space.dlb.tau"),
    ({"search": {"trials": 2, "space": {"dlb": {"temperature": {"type": "float", "low": 0.0, "high": 2.0}}}}},
     "field search.space.dlb.temperature"),
    ({"search": {"trials": 2, "space": {"dlb": {"temperature": {"type": "gaussian"}}}}},
     "field search.space.dlb.temperature.type"),
    ({"search": {"trials": 2, "pruner": "fancy"}}, "field search.pruner.type"),
    ({"final": {"seeds": []}}, "field final.seeds"),
    ({"heartbeat": {"interval": 5, "grace": 5}}, "field heartbeat.grace"),
]


# `status` reads the storage only, so checks that need the data set (train_subset) are tune's and worker's.
BAD_EXPERIMENT_CASES = [(command, overrides, expected) for command in ("tune", "worker", "status")
                        for overrides, expected in BAD_EXPERIMENTS
                        if not (command == "status" and "train_subset" in overrides)]


@pytest.mark.parametrize("command,overrides,expected", BAD_EXPERIMENT_CASES,
                         ids=[f"{c}-{e}" for c, _, e in BAD_EXPERIMENT_CASES])
def test_bad_experiment_files_exit_2_and_write_nothing(tmp_path, capsys, command, overrides, expected):
    data = {k: v for k, v in overrides.items() if v is not None}
    path = write_experiment(tmp_path, **data)
    if overrides.get("name", "") is None:
        content = yaml.safe_load(path.read_text())
        content.pop("name")
        path.write_text(yaml.safe_dump(content))
    out = tmp_path / "out"
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main([command, str(path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(path) in err and expected in err, err
    assert any(word in err for word in ("accepted", "accepts", "expected", "missing", "must be")), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no out folder, no journal, no lock file


def test_unreadable_experiment_file_exits_2(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    assert main(["tune", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert main(["tune", str(tmp_path / "missing.yaml")]) == 2
    assert not (tmp_path / "out").exists()


# -- one process, default journal storage, W&B offline -----------------------------------------

def test_tune_fills_every_slot_once_records_everywhere_and_logs_wandb(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    path = write_experiment(tmp_path)
    assert main(["tune", str(path)]) == 0
    printed = capsys.readouterr().out
    out = tmp_path / "runs" / "tiny"
    journal = str(out / "optuna.journal")
    assert yaml.safe_load((out / "experiment.yaml").read_text())["search"]["trials"] == 3
    slots = assert_each_slot_complete_once(journal)

    # Records: in the run folder and in the trial, with the fields the leaderboard relies on.
    finals = final_records(journal)
    assert len(finals) == 4 and {r["phase"] for r in finals} == {"final"}
    assert len(all_records(journal, "tiny", "search")) == 3
    for (cell, phase, slot), attempts in slots.items():
        record = attempts[-1][2]["record"]
        assert json.loads((out / phase / cell / slot / "result.json").read_text()) == record
        assert {k: record[k] for k in ("experiment", "cell", "phase", "slot")} == {
            "experiment": "tiny", "cell": cell, "phase": phase, "slot": slot}
        assert record["trial_number"] == attempts[-1][0]
        assert all(k in record for k in CONTRACT_FIELDS)
    search = [r for r in all_records(journal, "tiny", "search") if r["status"] == "finished"]
    best = max(search, key=lambda r: (r["best_val_acc"], -r["trial_number"]))
    for record in finals:
        assert record["planned_seeds"] == [0, 1]
        if record["cell"] == SEARCH_CELL:
            assert record["tuned_params"] == best["tuned_params"]
            assert record["method_args"]["temperature"] == best["tuned_params"]["temperature"]
        else:
            assert record["tuned_params"] == {}
    assert "7 done" in printed and "0 left" in printed

    # The reproduce line of a final run trains the same configuration to the same numbers.
    record = next(r for r in finals if r["cell"] == SEARCH_CELL and r["seed"] == 1)
    argv = shlex.split(record["reproduce"])
    assert argv[:2] == ["augbench", "train"]
    assert main([*argv[1:], "--no-progress"]) == 0
    again = json.loads((tmp_path / argv[argv.index("--out") + 1] / "result.json").read_text())
    # (the command line carries method arguments as text; the method resolves them to the same values)
    assert {**again["config"], "method_args": None} == {**record["config"], "method_args": None}
    assert again["method_args"] == record["method_args"]
    assert (again["test_acc"], again["best_val_acc"]) == (record["test_acc"], record["best_val_acc"])

    # W&B: one offline run per trial, read back: grouping, job type, config, per-epoch metrics, summary.
    for (cell, phase, slot), attempts in slots.items():
        run_dir = out / phase / cell / slot
        wandb_runs = sorted((run_dir / "wandb").glob("offline-run-*"))
        assert len(wandb_runs) == 1, wandb_runs
        logged = read_wandb_run(wandb_runs[0])
        record = attempts[-1][2]["record"]
        assert logged["run"]["run_group"] == f"tiny/{cell}" and logged["run"]["job_type"] == phase
        assert logged["config"]["lr"] == 0.05 and logged["config"]["cell"] == cell
        assert logged["config"]["seed"] == record["seed"]
        metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert [h["val_acc"] for h in logged["history"]] == [m["val_acc"] for m in metrics]
        assert [h["epoch"] for h in logged["history"]] == [m["epoch"] for m in metrics]
        assert logged["summary"]["test_acc"] == record["test_acc"]
        assert logged["summary"]["trial_number"] == record["trial_number"]

    # A second tune finds nothing to do.
    assert main(["tune", str(path), "--no-wandb"]) == 0
    assert "0 trials run here" in capsys.readouterr().out

    # optuna-dashboard reads the same storage.
    port = 18000 + os.getpid() % 1000
    dashboard = subprocess.Popen(["optuna-dashboard", journal, "--host", "127.0.0.1", "--port", str(port)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, studies = time.time() + 30, None
        while studies is None and time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as response:
                    studies = json.loads(response.read())["study_summaries"]
            except OSError:
                time.sleep(0.3)
        names = {s["study_name"] for s in studies}
        assert {f"tiny/{SEARCH_CELL}/search", f"tiny/{SEARCH_CELL}/final", f"tiny/{PLAIN_CELL}/final"} <= names
    finally:
        dashboard.terminate()
        dashboard.wait(10)


def test_wandb_runs_alongside_dataloader_worker_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    path = write_experiment(tmp_path, name="loaders", methods=["ce"], search={},
                            final={"seeds": [0]}, loader_workers=1)
    out = tmp_path / "out"
    assert main(["tune", str(path), "--out", str(out)]) == 0
    run_dir = out / "final" / PLAIN_CELL / "seed-0"
    (wandb_run,) = (run_dir / "wandb").glob("offline-run-*")
    logged = read_wandb_run(wandb_run)
    assert [h["epoch"] for h in logged["history"]] == [1, 2]
    assert logged["summary"]["status"] == "finished"


def test_failing_trial_is_retried_then_reported_with_its_reason(tmp_path, capsys):
    # A ViT made for 224-pixel images builds fine but fails on its first 32-pixel batch: a real runtime error.
    path = write_experiment(tmp_path, name="failing", backbones=["vit_tiny_patch16_224"], methods=["ce"],
                            search={}, epochs=1, final={"seeds": [0]}, retries=1)
    out = tmp_path / "out"
    assert main(["tune", str(path), "--out", str(out), "--no-wandb"]) == 1
    capsys.readouterr()
    slots = trials_by_slot(str(out / "optuna.journal"), "failing")
    (attempts,) = slots.values()
    assert [state for _, state, _ in attempts] == ["FAIL", "FAIL"]  # the first try and one retry
    assert attempts[1][2]["retry_of"] == attempts[0][0]
    assert main(["status", str(path), "--out", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "1 failed" in shown and "seed-0 after 2 attempts: AssertionError: Input height (32)" in shown


# -- interruption ----------------------------------------------------------------------------------

def wait_for(condition, timeout: float, what: str, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended ({proc.returncode}) while waiting for {what}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def running_with_checkpoint(storage_name: str, out: Path, experiment: str = "tiny"):
    """(cell, phase, slot) of a RUNNING trial whose run folder holds a checkpoint, once the storage shows one."""
    if storage_name.endswith(".journal") and not Path(storage_name).exists():
        return None
    for (cell, phase, slot), attempts in trials_by_slot(storage_name, experiment).items():
        if attempts[-1][1] == "RUNNING" and (out / phase / cell / slot / "checkpoint.pt").exists():
            return cell, phase, slot
    return None


def test_interrupted_tune_resumes_and_does_only_what_was_missing(tmp_path, capsys):
    # 30 short epochs: the third run stays in progress for several seconds, long enough to be interrupted mid-run.
    path = write_experiment(tmp_path, epochs=30, methods=["ce"], search={}, final={"seeds": [0, 1, 2]})
    expected = expected_slots(searched=False, seeds=(0, 1, 2))
    out = tmp_path / "out"
    journal = str(out / "optuna.journal")
    # SIGINT at its default in the child: a shell's background job starts with it ignored, and Python then
    # installs no KeyboardInterrupt handler (the interrupt would go unnoticed and the tune run to its end).
    proc = subprocess.Popen([sys.executable, "-m", "augbench", "tune", str(path), "--out", str(out), "--no-wandb"],
                            env=env_for_subprocess(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # Interrupt once two runs have finished and a third is between epochs.
    def ready():
        slots = trials_by_slot(journal) if Path(journal).exists() else {}
        done = [k for k, a in slots.items() if a[-1][1] == "COMPLETE"]
        return len(done) >= 2 and running_with_checkpoint(journal, out)

    wait_for(ready, 120, "two finished runs and a third in progress", proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 130, proc.stdout.read()
    before = trials_by_slot(journal)
    finished = {k: (out / k[1] / k[0] / k[2] / "result.json") for k, a in before.items() if a[-1][1] == "COMPLETE"}
    stamps = {k: (p.stat().st_mtime_ns, p.read_text()) for k, p in finished.items()}
    (interrupted,) = [k for k, a in before.items() if a[-1][1] == "FAIL"]
    assert before[interrupted][-1][2]["interrupted"] is True

    assert main(["tune", str(path), "--out", str(out), "--no-wandb"]) == 0
    printed = capsys.readouterr().out
    after = assert_each_slot_complete_once(journal, expected)
    # Finished runs were neither trained again nor rewritten; only the missing ones ran.
    assert {k: (p.stat().st_mtime_ns, p.read_text()) for k, p in finished.items()} == stamps
    assert f"{len(expected) - len(finished)} trials run here" in printed
    for key in finished:
        assert len(after[key]) == 1
    # The interrupted run continued from its checkpoint, in its own folder.
    retry = after[interrupted][-1][2]
    assert retry["resumed_from_epoch"] >= 1 and retry["retry_of"] == before[interrupted][-1][0]
    metrics = (out / interrupted[1] / interrupted[0] / interrupted[2] / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(m)["epoch"] for m in metrics] == list(range(1, 31))


# -- PostgreSQL: several workers, a killed worker ------------------------------------------------

@pytest.fixture
def postgres_url():
    """A fresh database on the test PostgreSQL server (scripts/start-postgres.sh), dropped afterwards."""
    base = os.environ.get("AUGBENCH_TEST_POSTGRES_URL")
    if not base:
        if os.environ.get("CI"):
            pytest.fail("AUGBENCH_TEST_POSTGRES_URL is not set on CI: run `eval \"$(bash scripts/start-postgres.sh)\"`")
        pytest.skip("no test PostgreSQL server (eval \"$(bash scripts/start-postgres.sh)\" starts one)")
    import psycopg2

    name = f"augbench_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(base)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def start_worker(path: Path, out: Path, storage: str, name: str, wandb: bool = False, **env) -> subprocess.Popen:
    command = [sys.executable, "-m", "augbench", "worker", str(path), "--out", str(out), "--storage", storage,
               "--name", name, *([] if wandb else ["--no-wandb"])]
    return subprocess.Popen(command, env=env_for_subprocess(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_two_postgres_workers_fill_every_slot_exactly_once_and_never_leak_the_password(tmp_path, postgres_url):
    from urllib.parse import urlsplit

    password = urlsplit(postgres_url).password
    assert password
    path = write_experiment(tmp_path, epochs=1)
    workers = [start_worker(path, tmp_path / f"w{i}", postgres_url, f"w{i}", wandb=True) for i in (1, 2)]
    logs = [w.communicate(timeout=240)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs
    slots = assert_each_slot_complete_once(postgres_url)
    # Every slot's run folder exists in exactly one worker's output folder.
    ran = {i: {(p.parent.parent.parent.name, p.parent.parent.name, p.parent.name)
               for p in (tmp_path / f"w{i}").glob("*/*/*/result.json")} for i in (1, 2)}
    assert not ran[1] & ran[2] and ran[1] | ran[2] == {(p, c, s) for c, p, s in slots}
    assert ran[1] and ran[2], "both workers should have run trials"
    assert len(final_records(postgres_url, "tiny")) == 4
    # The password reaches neither logs, run folders (W&B included), nor the storage's records.
    assert all(password not in log for log in logs)
    for folder in (tmp_path / "w1", tmp_path / "w2"):
        for file in folder.rglob("*"):
            if file.is_file():
                assert password.encode() not in file.read_bytes(), file
    records = json.dumps(all_records(postgres_url))
    assert password not in records and redact_url(postgres_url) in records


def test_worker_killed_mid_trial_is_detected_by_heartbeat_and_its_trial_resumes(tmp_path, postgres_url):
    path = write_experiment(tmp_path, epochs=4, methods=["ce"], search={})
    expected = expected_slots(searched=False)
    out = tmp_path / "out"
    doomed = start_worker(path, out, postgres_url, "doomed", AUGBENCH_HOST_ID="machine-a")
    killed = wait_for(lambda: running_with_checkpoint(postgres_url, out), 120, "a trial between epochs", doomed)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(30)
    before = trials_by_slot(postgres_url)
    assert before[killed][-1][1] == "RUNNING"
    # Another "machine" cannot see the dead process: only the heartbeat tells it the trial is lost.
    survivor = start_worker(path, out, postgres_url, "survivor", AUGBENCH_HOST_ID="machine-b")
    log = survivor.communicate(timeout=240)[0]
    assert survivor.returncode == 0, log
    after = assert_each_slot_complete_once(postgres_url, expected)
    states = [state for _, state, _ in after[killed]]
    assert states == ["FAIL", "COMPLETE"], states
    assert after[killed][-1][2]["resumed_from_epoch"] >= 1
    metrics = (out / killed[1] / killed[0] / killed[2] / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(m)["epoch"] for m in metrics] == [1, 2, 3, 4]
    # No duplicate final runs: one record and one run folder per final seed.
    finals = final_records(postgres_url, "tiny")
    assert sorted((r["cell"], r["seed"]) for r in finals) == [(PLAIN_CELL, 0), (PLAIN_CELL, 1)]
    assert len(list(out.glob("final/*/*/result.json"))) == 2


# -- small pieces ----------------------------------------------------------------------------------

def test_pruning_callback_stops_a_trial_below_the_median_before_its_last_epoch(tmp_path):
    import optuna

    from augbench.engine import EarlyStop
    from augbench.tune.worker import PruningCallback

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    strong = study.ask()
    for epoch, value in enumerate([60.0, 80.0], start=1):
        strong.report(value, epoch)
    study.tell(strong, 80.0)
    weak = study.ask()
    callback = PruningCallback(weak, tmp_path, "median")
    callback.on_epoch_end({"epoch": 1, "val_acc": 70.0})  # above the median at epoch 1: goes on
    with pytest.raises(EarlyStop) as stop:
        callback.on_epoch_end({"epoch": 2, "val_acc": 50.0})
    assert stop.value.status == "pruned" and "epoch 2" in stop.value.reason
    # The same curve in a run of 2 epochs: at its last epoch it is trained, and finishes.
    last = PruningCallback(study.ask(), tmp_path, "median")
    last.on_start({"epochs": 2}, resumed=False)
    last.on_epoch_end({"epoch": 1, "val_acc": 70.0})
    last.on_epoch_end({"epoch": 2, "val_acc": 50.0})


def test_storage_passwords_are_redacted():
    url = "postgresql://bench:s3cr%40t@db.example:5432/augbench"
    assert redact_url(url) == "postgresql://bench:***@db.example:5432/augbench"
    assert redact_url("postgresql+psycopg2://u:p@h/db") == "postgresql+psycopg2://u:***@h/db"
    assert redact_url("runs/x/optuna.journal") == "runs/x/optuna.journal"
    assert redact_url("sqlite:///runs/x.db") == "sqlite:///runs/x.db"
    assert "s3cr" not in scrub(f"could not connect to {url} (password s3cr@t)", url)


def test_unreachable_storage_is_a_usage_error_without_the_password(tmp_path, capsys):
    path = write_experiment(tmp_path)
    code = main(["tune", str(path), "--out", str(tmp_path / "out"), "--storage",
                 "postgresql://bench:hunter2-secret@127.0.0.1:1/none"])
    err = capsys.readouterr().err
    assert code == 2 and "postgresql://bench:***@127.0.0.1:1/none" in err and "hunter2" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", sorted(PRUNERS))
def test_every_registered_pruner_loads_and_builds(tmp_path, name):
    import optuna

    from augbench.tune.experiment import load_experiment

    path = write_experiment(tmp_path, search={**TINY["search"], "pruner": name})
    experiment = load_experiment(path)
    assert experiment.pruner.type == name
    assert isinstance(experiment.pruner.build(), optuna.pruners.BasePruner)
    assert load_experiment(path).definition_hash() == experiment.definition_hash()


PARAM_SPECS = {"float": {"type": "float", "low": 0.01, "high": 0.2, "log": True},
               "int": {"type": "int", "low": 32, "high": 128, "step": 32},
               "categorical": {"type": "categorical", "choices": [32, 64]}}


@pytest.mark.parametrize("sampler", sorted(SEARCH_SAMPLERS))
@pytest.mark.parametrize("kind", sorted(PARAM_TYPES))
def test_every_parameter_type_suggests_inside_its_space(tmp_path, kind, sampler):
    import optuna

    from augbench.tune.experiment import load_experiment

    name = "lr" if kind == "float" else "batch_size"
    space = {"ce": {name: PARAM_SPECS[kind]}}
    experiment = load_experiment(write_experiment(tmp_path, search={"trials": 2, "space": space}))
    param = experiment.space_for("ce")[name]
    study = optuna.create_study()
    for k in range(20):
        study.sampler = build_sampler(sampler, "cell", f"trial-{k}", 1, (name,))
        value = param.suggest(study.ask())
        if kind == "categorical":
            assert value in (32, 64)
        else:
            assert param.low <= value <= param.high
            assert kind == "float" or value % 32 == 0


def test_qmc_gives_each_slot_its_point_of_one_balanced_sequence_whatever_the_order(tmp_path):
    """8 slots of a cell: one value in each eighth of every parameter's range, the same in any asking order."""
    import math

    import optuna

    from augbench.tune.experiment import load_experiment

    space = {"dlb": {"lr": PARAM_SPECS["float"], "temperature": {"type": "float", "low": 1.0, "high": 6.0}}}
    experiment = load_experiment(write_experiment(tmp_path, search={"trials": 8, "sampler": "qmc", "space": space}))
    params = experiment.space_for("dlb")

    def draw(order):
        study, values = optuna.create_study(), {}
        for k in order:
            study.sampler = build_sampler("qmc", "fashion_mnist.cifar_resnet8.baseline.dlb.clean", f"trial-{k}", 1,
                                          tuple(params))
            trial = study.ask()
            values[k] = {name: param.suggest(trial) for name, param in params.items()}
            study.tell(trial, 0.0)
        return values

    forward, backward = draw(range(8)), draw(reversed(range(8)))
    assert forward == backward
    lr_bins = {int(8 * math.log(v["lr"] / 0.01) / math.log(0.2 / 0.01)) for v in forward.values()}
    t_bins = {int(8 * (v["temperature"] - 1.0) / 5.0) for v in forward.values()}
    assert lr_bins == t_bins == set(range(8))
    other_cell = build_sampler("qmc", "another.cell", "trial-0", 1, tuple(params))
    assert other_cell.point != build_sampler("qmc", "fashion_mnist.cifar_resnet8.baseline.dlb.clean", "trial-0", 1,
                                             tuple(params)).point
