"""One run on two processes: torchrun, gloo, DistributedDataParallel, on the generated data set.

The runs are real: torchrun starts two ranks that train together, write one
run folder, survive a kill -9 of a rank through a rerun, and reduce their
evaluation exactly.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from augbench import cli
from augbench.config import RunConfig
from augbench.data.loader import TrainLoader
from augbench.data.samplers import SAMPLER_BLOCKS, SAMPLERS, shard
from augbench.engine.metrics import evaluate, evaluation_sums
from augbench.engine.run import CHECKPOINT_FILE, METRICS_FILE, RESULT_FILE, build

TIMING = {"epoch_seconds", "images_per_second", "eval_seconds", "test_seconds"}
VOLATILE = {"train_seconds", "eval_seconds", "samples_per_second", "peak_memory_mb", "started_at", "finished_at",
            "command"}
#: A short DLB run with Mixup: per-rank caches and per-rank numpy draws that a resume must restore.
DLB_MIXUP = ["--method", "dlb", "--recipe", "mixup", "--epochs", "4", "--schedule", "cosine"]


def base_args(out: Path, *extra: str) -> list[str]:
    return ["--dataset", "synthetic", "--model", "cifar_resnet8", "--train-subset", "640", "--batch-size", "64",
            "--seed", "3", "--device", "cpu", "--no-progress", *extra, "--out", str(out)]


def torchrun_command(args: list[str], nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--standalone",
            "--monitor-interval", "0.1", "-m", "augbench", "train", *args]


def quiet_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun(args: list[str], nproc: int = 2, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(torchrun_command(args, nproc), capture_output=True, text=True, timeout=timeout,
                          env=quiet_env())


def metric_lines(run_dir: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run_dir / METRICS_FILE).read_text().splitlines()]
    return [{k: v for k, v in m.items() if k not in TIMING} for m in lines]


def comparable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in VOLATILE}


def read_record(run_dir: Path) -> dict:
    return json.loads((run_dir / RESULT_FILE).read_text())


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """A finished two-process DLB + Mixup run, 4 epochs."""
    out = tmp_path_factory.mktemp("ddp") / "straight"
    done = torchrun(base_args(out, *DLB_MIXUP))
    assert done.returncode == 0, done.stdout + done.stderr
    return out


# -- sharding, in one process ----------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_shards_of_every_sampler_partition_the_global_batch(name):
    labels = torch.arange(96) % 6
    for positions in SAMPLERS[name](labels, 16, torch.Generator().manual_seed(2)):
        shards = [shard(positions, SAMPLER_BLOCKS[name], r, 4) for r in range(4)]
        assert sorted(torch.cat(shards).tolist()) == sorted(positions.tolist())
        assert all(len(s) == len(positions) // 4 for s in shards)


def test_class_pairs_stay_on_one_rank():
    labels = torch.arange(120) % 5
    for positions in SAMPLERS["class_pairs"](labels, 24, torch.Generator().manual_seed(0)):
        for rank in range(3):
            mine = shard(positions, SAMPLER_BLOCKS["class_pairs"], rank, 3)
            anchors, partners = mine[:8], mine[8:]
            assert torch.equal(labels[anchors], labels[partners])
            assert torch.equal(partners, positions[24 + rank * 8: 24 + (rank + 1) * 8])


def test_each_rank_loads_its_shard_with_its_own_augmentation(small_config):
    setup = build(small_config(recipe="cutout"), device="cpu")
    loader = setup.loader

    def rank_loader(rank, world_size):
        return TrainLoader(loader.images, loader.labels, loader.index, loader.pipeline, 1, 64, loader.mean.tolist(),
                           loader.std.tolist(), loader.seed, rank=rank, world_size=world_size)

    single = next(rank_loader(0, 1).epoch(1))
    ranks = [next(rank_loader(r, 2).epoch(1)) for r in range(2)]
    assert torch.equal(torch.cat([index for _, _, index in ranks]), single[2])  # the same global batch
    assert torch.equal(torch.cat([labels for _, labels, _ in ranks]), single[1])
    # Same images, different streams: rank 0 does not augment its half as one process does.
    assert not torch.equal(ranks[0][0][0], single[0][0][:32])
    again = next(rank_loader(1, 2).epoch(1))
    assert torch.equal(again[0][0], ranks[1][0][0])  # each rank's stream is seeded


def test_sharded_evaluation_sums_to_the_whole_split(small_config):
    setup = build(small_config(), device="cpu")
    images, labels = setup.test
    mean, std = setup.loader.mean, setup.loader.std
    whole = evaluate(setup.model, images, labels, mean, std, 300)
    other_half = evaluation_sums(setup.model, images[333:], labels[333:], mean, std, 300)
    sharded = evaluate(setup.model, images[:333], labels[:333], mean, std, 300,
                       reduce=lambda sums: sums + other_half)
    assert sharded["acc"] == whole["acc"]  # counts add exactly
    assert sharded["nll"] == pytest.approx(whole["nll"], rel=1e-5)
    assert sharded["ece"] == pytest.approx(whole["ece"], rel=1e-4, abs=1e-4)


# -- bad input: exit 2, nothing written --------------------------------------------------------------

def test_sync_bn_without_ddp_exits_2(tmp_path, capsys):
    assert cli.main(["train", *base_args(tmp_path / "r", "--sync-bn")]) == 2
    assert "--sync-bn" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("extra, message", [(["--batch-size", "63"], "divide by the world size 2"),
                                            (["--sync-bn"], "CUDA only")])
def test_bad_ddp_input_exits_2_before_the_rendezvous(tmp_path, capsys, monkeypatch, extra, message):
    # torchrun's environment for rank 0 of 2, with nobody else: the check must come before any waiting.
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert cli.main(["train", *base_args(tmp_path / "r"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_unreachable_rendezvous_is_a_clear_error_within_the_timeout(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**quiet_env(), "WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port)}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "augbench", "train", *base_args(tmp_path / "r"),
                           "--dist-timeout", "3"], capture_output=True, text=True, timeout=60, env=env)
    assert time.monotonic() - start < 40
    assert done.returncode == 2, done.stderr
    assert f"rank 1 of 2 could not join the run at 127.0.0.1:{port} (gloo) within 3s" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "r").exists()


# -- real two-process runs -----------------------------------------------------------------------------

def test_ddp_run_writes_one_folder_with_every_rank_state(straight):
    record = read_record(straight)
    assert record["status"] == "finished" and record["world_size"] == 2
    assert record["epochs_trained"] == 4 and len(metric_lines(straight)) == 4  # one writer
    # The global forward count of one process at batch 64: DLB's first step has nothing to replay.
    assert record["forward_samples"] == 2 * 4 * 10 * 64 - 64
    assert record["test_acc"] > 25.0  # 10 classes
    state = torch.load(straight / CHECKPOINT_FILE, map_location="cpu", weights_only=False)
    assert state["world_size"] == 2 and len(state["rank_states"]) == 2
    caches = [r["method"] for r in state["rank_states"]]
    # Each rank replays its own previous shard: half of the last global batch each, different samples.
    assert caches[0]["replay_images"].shape[0] == 32
    assert not torch.equal(caches[0]["replay_images"], caches[1]["replay_images"])
    assert not torch.equal(state["rank_states"][0]["rng"]["torch"], state["rank_states"][1]["rng"]["torch"])


def test_ddp_test_accuracy_is_the_whole_split_of_the_saved_model(straight):
    config = RunConfig.from_dict(json.loads((straight / "config.json").read_text()))
    setup = build(config, device="cpu")
    state = torch.load(straight / CHECKPOINT_FILE, map_location="cpu", weights_only=False)
    setup.model.load_state_dict(state["model"])
    images, labels = setup.test
    result = evaluate(setup.model, images, labels, setup.loader.mean, setup.loader.std, config.eval_batch_size,
                      config.channels_last)
    record = read_record(straight)
    assert result["acc"] == record["test_acc"]
    assert result["nll"] == pytest.approx(record["test_nll"], rel=1e-5)


def test_ddp_run_is_deterministic_per_seed(straight, tmp_path):
    done = torchrun(base_args(tmp_path / "again", *DLB_MIXUP))
    assert done.returncode == 0, done.stdout + done.stderr
    assert metric_lines(tmp_path / "again") == metric_lines(straight)
    assert comparable(read_record(tmp_path / "again")) == comparable(read_record(straight))


def _rank_pid(parent: int, rank: int) -> int | None:
    """The pid of the torchrun worker with RANK=rank among the descendants of ``parent``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    todo, found = [parent], []
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            todo.append(child)
            try:
                environ = b"\0" + (Path("/proc") / str(child) / "environ").read_bytes()
            except OSError:
                continue
            if f"\0RANK={rank}\0".encode() in environ and b"\0LOCAL_WORLD_SIZE=" in environ:
                found.append(child)
    return found[0] if found else None


def test_kill_9_of_one_rank_fails_the_run_and_a_rerun_resumes(straight, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen(torchrun_command(base_args(out, *DLB_MIXUP)), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=quiet_env())
    try:
        deadline = time.monotonic() + 180
        while not (out / CHECKPOINT_FILE).exists():  # epoch 1 is saved: the kill lands in a later epoch
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.02)
        victim = _rank_pid(proc.pid, rank=1)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, output
    failed = read_record(out)
    assert failed["status"] == "failed" and failed["resumable"] is True, failed
    assert "rank 0 of 2 stopped during epoch" in failed["reason"]
    assert failed["epochs_trained"] < 4

    done = torchrun(base_args(out, *DLB_MIXUP))
    assert done.returncode == 0, done.stdout + done.stderr
    resumed = read_record(out)
    assert resumed["status"] == "finished" and "resumable" not in resumed
    # Every rank's RNG, DLB cache and the shared state came back: the same run as one never interrupted.
    assert metric_lines(out) == metric_lines(straight)
    assert resumed["test_acc"] == read_record(straight)["test_acc"]


def test_pskd_memory_is_gathered_on_every_rank(tmp_path):
    out = tmp_path / "pskd"
    done = torchrun(base_args(out, "--method", "pskd", "--epochs", "2"))
    assert done.returncode == 0, done.stdout + done.stderr
    state = torch.load(out / CHECKPOINT_FILE, map_location="cpu", weights_only=False)
    memories = [r["method"] for r in state["rank_states"]]
    assert torch.equal(memories[0]["memory"], memories[1]["memory"])
    assert memories[0]["remembered"].all()  # 640 samples in 10 full batches: every sample, on one rank or other
    # Each row is one softmax prediction, not a sum of two ranks' writes.
    assert torch.allclose(memories[0]["memory"].sum(1), torch.ones(640), atol=1e-5)
    assert 0 < memories[0]["written"].sum() < 640  # this rank wrote its own shards only


def test_cskd_pairs_train_under_ddp(tmp_path):
    out = tmp_path / "cskd"
    done = torchrun(base_args(out, "--method", "cskd", "--epochs", "1"))
    assert done.returncode == 0, done.stdout + done.stderr
    record = read_record(out)
    assert record["status"] == "finished" and record["world_size"] == 2
    assert record["forward_samples"] == 10 * 2 * 64  # anchors and partners, summed over the ranks


def test_an_experiment_asks_for_ddp_runs_and_the_worker_launches_them(tmp_path, monkeypatch):
    import yaml

    from augbench.tune.storage import final_records

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    experiment = {"name": "ddp_tiny", "dataset": "synthetic", "train_subset": 256, "val_fraction": 0.1,
                  "backbones": ["cifar_resnet8"], "recipes": ["baseline"], "methods": ["dlb"], "epochs": 1,
                  "fixed": {"batch_size": 64}, "final": {"seeds": [0]},
                  "ddp": {"nproc_per_node": 2}}
    path = tmp_path / "ddp_tiny.yaml"
    path.write_text(yaml.safe_dump(experiment))
    assert cli.main(["tune", str(path), "--no-wandb", "--device", "cpu"]) == 0
    out = tmp_path / "runs" / "ddp_tiny"
    [record] = final_records(str(out / "optuna.journal"))
    assert record["status"] == "finished" and record["world_size"] == 2
    assert record["experiment"] == "ddp_tiny" and record["phase"] == "final"
    folder = out / "final" / record["cell"] / "seed-0"
    assert read_record(folder) == record
    assert len(metric_lines(folder)) == 1


def test_experiment_ddp_field_is_checked(tmp_path):
    import yaml

    from augbench.errors import UsageError
    from augbench.tune.experiment import load_experiment

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "dataset": "synthetic", "backbones": ["cifar_resnet8"],
                                    "recipes": ["baseline"], "methods": ["ce"], "epochs": 1,
                                    "ddp": {"nproc_per_node": 0}}))
    with pytest.raises(UsageError, match=r"field ddp.nproc_per_node: got 0; accepted: an integer >= 1"):
        load_experiment(path)
