"""The batched data path: batch ops on the device, the loader/device split, no host syncs per step, evaluation."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch.overrides import TorchFunctionMode

from augbench.augment import OPS, load_recipe
from augbench.augment.ops import OP_KINDS
from augbench.augment.pipeline import Pipeline
from augbench.augment.recipe import find_recipe
from augbench.cli import main
from augbench.engine import train
from augbench.engine.run import FINITE_CHECK_EVERY, Run, bf16_problem, build
from augbench.errors import UsageError

BATCH_OPS = sorted(name for name, kind in OP_KINDS.items() if kind == "batch")
QUIET = {"progress": False, "log": lambda _: None}


def gray_batch(b=64, c=1, h=28, w=28, value=200):
    return torch.full((b, c, h, w), value, dtype=torch.uint8)


def test_the_standard_ops_and_policies_are_batch_ops_and_torchvisions_own_policies_sample_ops():
    assert {"pad_crop", "flip", "cutout", "random_erasing", "autoaugment", "randaugment",
            "trivialaugment"} <= set(BATCH_OPS)
    sample_ops = ("tv_autoaugment", "tv_randaugment", "tv_trivialaugment", "albumentations", "color_jitter")
    assert {OP_KINDS[n] for n in sample_ops} == {"sample"}


@pytest.fixture
def policy_in_loader(tmp_path):
    """A recipe whose first op (torchvision's AutoAugment) runs in the loader, the rest on the device."""
    path = tmp_path / "tv_autoaugment.yaml"
    path.write_text("name: tv_autoaugment\ndescription: torchvision's AutoAugment per sample, then crop, flip\n"
                    "paper: Cubuk et al. 2019\n"
                    "ops:\n  - {op: tv_autoaugment, policy: cifar10}\n  - {op: pad_crop, padding: 4}\n"
                    "  - {op: flip, p: 0.5}\n  - {op: cutout, length: 16}\n")
    return str(path)


@pytest.mark.parametrize("name", BATCH_OPS)
@pytest.mark.parametrize("channels", [1, 3])
def test_every_batch_op_keeps_shape_is_reproducible_and_draws_per_sample(name, channels):
    op = OPS[name]()
    images = torch.randint(0, 256, (64, channels, 32, 32), dtype=torch.uint8)
    a = op(images, torch.Generator().manual_seed(1))
    b = op(images, torch.Generator().manual_seed(1))
    c = op(images, torch.Generator().manual_seed(2))
    assert a.shape == images.shape and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)
    changed = (a != images).flatten(1).any(1)
    # drawn per sample, not per batch (RandAugment's two ops leave almost no image as it was: its per-sample
    # draws are tested in test_policy_ops)
    assert 0 < changed.sum() < 64 or name in ("pad_crop", "cutout", "randaugment")
    assert op.sample(images[0]).shape == images[0].shape  # the per-sample reference form


def test_pad_crop_is_a_translation_by_at_most_the_padding_with_every_offset_drawn():
    p, images = 4, torch.randint(1, 256, (2000, 1, 12, 12), dtype=torch.uint8)
    out = OPS["pad_crop"](padding=p)(images, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(images, (p, p, p, p))
    offsets = set()
    for i in range(len(images)):
        found = [(t, s) for t in range(2 * p + 1) for s in range(2 * p + 1)
                 if torch.equal(padded[i, :, t:t + 12, s:s + 12], out[i])]
        assert found, f"sample {i} is not a crop of its padded image"
        offsets.add(found[0])
    assert len(offsets) == (2 * p + 1) ** 2


@pytest.mark.parametrize("fill", [0, [1, 2, 3]])
def test_fused_crop_and_flip_equal_the_two_ops_one_after_the_other(fill):
    from augbench.augment.pipeline import Pipeline

    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    crop, flip, cutout = OPS["pad_crop"](padding=4, fill=fill), OPS["flip"](p=0.5), OPS["cutout"]()
    g = torch.Generator().manual_seed(0)
    separate = cutout(flip(crop(images, g), g), g)
    pipeline = Pipeline.from_spec([("pad_crop", {"padding": 4, "fill": fill}), ("flip", {"p": 0.5}), ("cutout", {})])
    fused = pipeline(images, torch.Generator().manual_seed(0))
    assert torch.equal(separate, fused)
    crop_flip = Pipeline.from_spec([("pad_crop", {"padding": 4, "fill": fill}), ("flip", {"p": 0.5})])
    flipped = crop_flip(images, torch.Generator().manual_seed(0)) != crop(images, torch.Generator().manual_seed(0))
    assert 0 < flipped.flatten(1).any(1).sum() < 64  # some samples flipped, some not


@pytest.mark.parametrize("spec", [
    [("pad_crop", {"padding": 4, "fill": [1, 2, 3]}), ("flip", {"p": 0.5}), ("cutout", {})],  # fused, then more
    [("pad_crop", {"padding": 2})],                                                           # alone
    [("flip", {"p": 0.5}), ("pad_crop", {"padding": 4})],                          # not first: nothing kept padded
])
def test_the_resident_set_gives_the_views_that_the_raw_images_give(spec):
    """A loader without a loader stage keeps ``pipeline.resident(images)`` on the device (``pad_crop`` first:
    padded once) and gathers batches from it: the views are the ones the raw images give."""
    images = torch.randint(0, 256, (50, 3, 32, 32), dtype=torch.uint8)
    pipeline = Pipeline.from_spec(spec)
    resident = pipeline.resident(images)
    padding = spec[0][1].get("padding", 0) if spec[0][0] == "pad_crop" else 0
    assert resident.shape == (50, 3, 32 + 2 * padding, 32 + 2 * padding)
    rows = torch.tensor([3, 7, 7, 41, 0])
    from_resident = pipeline.run_device_stage(resident[rows], torch.Generator().manual_seed(5), resident=True)
    assert torch.equal(from_resident, pipeline.run_device_stage(images[rows], torch.Generator().manual_seed(5)))
    assert not torch.equal(from_resident, images[rows])


def test_flip_mirrors_about_p_of_the_samples():
    images = torch.randint(0, 256, (4000, 1, 8, 8), dtype=torch.uint8)
    out = OPS["flip"](p=0.3)(images, torch.Generator().manual_seed(0))
    mirrored = (out == images.flip(-1)).flatten(1).all(1)
    assert ((out == images).flatten(1).all(1) | mirrored).all()
    assert abs(mirrored.float().mean().item() - 0.3) < 0.03


def test_cutout_holes_have_the_scaled_side_are_clipped_and_take_the_mean_fill():
    images = gray_batch(b=3000)
    out = OPS["cutout"](length=16, reference_size=32)(images, torch.Generator().manual_seed(0))
    holes = (out == 0).flatten(1).sum(1)
    assert holes.max() == 14 * 14 and holes.min() < 14 * 14  # 16 px at 32 is 14 at 28; border holes clipped
    # The centre is uniform over the image: about a quarter of the holes lie wholly inside (7 <= c < 21).
    assert 0.15 < (holes == 196).float().mean().item() < 0.35
    recipe = Pipeline.from_spec([("cutout", {"length": 16, "fill": "mean"})]).for_dataset([0.25, 0.5, 0.75])
    out = recipe(gray_batch(b=8, c=3, h=32, w=32, value=255), torch.Generator().manual_seed(0))
    filled = out.permute(1, 0, 2, 3).flatten(1)
    assert [sorted(set(ch.tolist()) - {255}) for ch in filled] == [[64], [128], [191]]


def test_random_erasing_matches_torchvision_draws_in_distribution():
    """Batched boxes against torchvision's get_params (the per-sample form): erase rate and mean area."""
    op = OPS["random_erasing"](p=0.5, value=0)
    images = gray_batch(b=4000, h=32, w=32)
    batched = (op(images, torch.Generator().manual_seed(0)) == 0).flatten(1).sum(1).float()
    torch.manual_seed(0)
    reference = torch.tensor([(op.sample(img) == 0).sum().item() for img in images[:4000]]).float()
    for values in (batched, reference):
        assert values.max() <= 0.4 * 32 * 32 + 40
    assert abs((batched > 0).float().mean() - (reference > 0).float().mean()) < 0.04
    assert abs(batched[batched > 0].mean() - reference[reference > 0].mean()) < 25  # ~215 px on average


def test_pipeline_splits_after_the_last_sample_op(policy_in_loader):
    recipe = load_recipe(policy_in_loader)
    names = [name for name, _ in recipe.pipeline.spec]
    assert names[:2] == ["tv_autoaugment", "pad_crop"] and recipe.pipeline.split == 1  # the policy runs first
    assert load_recipe("baseline").pipeline.split == 0 and not load_recipe("cutout").pipeline.needs_loader
    assert not load_recipe("autoaugment").pipeline.needs_loader  # the batched policy runs on the device


@pytest.mark.parametrize("recipe", ["policy_in_loader", "autoaugment", "cutout"])
def test_views_are_the_same_with_0_or_2_workers_and_per_epoch(small_config, recipe, request):
    if recipe == "policy_in_loader":
        recipe = request.getfixturevalue(recipe)

    calls, priorities = [], []

    def views(workers, epochs):
        setup = build(small_config(recipe=recipe, method="dlb", batch_size=32, train_subset=128), num_workers=workers)
        pipeline, device_stage = setup.loader.pipeline, setup.loader.pipeline.run_device_stage
        # Counted in this process only: a worker counts in its own copy.
        pipeline.run_device_stage = lambda *a, **kw: calls.append(workers) or device_stage(*a, **kw)
        for epoch in epochs:
            batches = list(setup.loader.epoch(epoch))
        if setup.loader._dataloader is not None:  # the workers that augmented (persistent: still there)
            priorities.extend(os.getpriority(os.PRIO_PROCESS, worker.pid)
                              for worker in setup.loader._dataloader._iterator._workers)
        setup.loader.close()
        return batches

    inline, workers = views(0, [1]), views(2, [0, 1])  # epoch 1 alone equals epoch 1 after epoch 0
    assert len(inline) == len(workers) == 4
    # On a CPU the workers do all of a policy recipe (sample op or batched policy); a cheap one stays here.
    assert calls.count(0) == 4 and calls.count(2) == (8 if recipe == "cutout" else 0)
    # Workers that augment on a CPU run at the lowest priority, behind the model's threads.
    assert priorities == ([] if recipe == "cutout" else [19, 19])
    for (v0, l0, i0), (v1, l1, i1) in zip(inline, workers):
        assert torch.equal(l0, l1) and torch.equal(i0, i1)
        assert all(torch.equal(a, b) for a, b in zip(v0, v1))
        assert not torch.equal(v0[0], v0[1])  # two independently augmented views


class _Calls(TorchFunctionMode):
    """Counts the calls to any of ``FUNCS`` while it is active."""

    FUNCS: frozenset = frozenset()

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self.FUNCS:
            self.count += 1
        return func(*args, **(kwargs or {}))


class _HostReads(_Calls):
    """Counts the calls that read a tensor's value back to the host."""

    FUNCS = frozenset({torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.__bool__, torch.Tensor.__float__,
                       torch.Tensor.__int__, torch.Tensor.numpy})


class _HostCopies(_Calls):
    """Counts tensors made from host values (on an accelerator, a copy to the device that waits for it)."""

    FUNCS = frozenset({torch.tensor, torch.as_tensor, torch.from_numpy})


@pytest.mark.parametrize("name", BATCH_OPS)
def test_batch_ops_read_nothing_back_and_copy_nothing_from_the_host(name):
    op = OPS[name]()
    if hasattr(op, "grouped"):
        op.grouped = False  # the policies' accelerator path (on a CPU they group samples by operation)
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)
    op(images, torch.Generator().manual_seed(0))  # constants are made once per device, on the first call
    with _HostReads() as reads, _HostCopies() as copies:
        op(images, torch.Generator().manual_seed(1))
    assert (reads.count, copies.count) == (0, 0)


@pytest.mark.parametrize("method,recipe", [(m, "mixup") for m in ("ce", "dlb", "pskd", "cskd", "lsr", "tfkd_reg")]
                         + [("dlb", "cutout")])
def test_the_step_loop_reads_nothing_back_per_step(tmp_path, small_config, method, recipe):
    setup = build(small_config(method=method, recipe=recipe, batch_size=16, train_subset=960))
    run = Run(setup, tmp_path, progress=False, log=lambda _: None)
    with _HostReads() as reads:
        metrics = run._train_epoch(0)
    steps = metrics["step"]
    assert steps == 60 > FINITE_CHECK_EVERY
    # Per epoch: the finite checks (one per FINITE_CHECK_EVERY steps and one at the end) and the final sums.
    assert reads.count <= 4 * (steps // FINITE_CHECK_EVERY + 1) + 8, reads.count


def test_a_non_finite_loss_names_the_step_range(tmp_path, small_config):
    record = train(small_config(lr=1e12, epochs=1, train_subset=640, batch_size=8), tmp_path / "nan", **QUIET)
    assert record["status"] == "failed"
    assert "non-finite loss at epoch 1, between steps" in record["reason"]
    first, last = (int(x) for x in record["reason"].rsplit("steps ", 1)[1].split(" and "))
    assert last - first + 1 <= FINITE_CHECK_EVERY and first >= 1


def test_test_set_at_the_end_and_exactly_at_the_best_validation_epoch(tmp_path, small_config):
    record = train(small_config(epochs=4, lr=0.2), tmp_path / "r", **QUIET)
    lines = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert all("val_acc" in m for m in lines)
    assert ["test_acc" in m for m in lines] == [False, False, False, True]
    assert record["test_acc"] == lines[-1]["test_acc"]
    best = max(lines, key=lambda m: m["val_acc"])
    assert record["best_val_epoch"] == best["epoch"]
    # The kept weights of the best epoch, evaluated anew, give exactly the recorded test accuracy.
    checkpoint = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)
    setup = build(small_config(epochs=4, lr=0.2))
    setup.model.load_state_dict(checkpoint["best"]["state"])
    run = Run(setup, tmp_path / "other", **QUIET)
    assert run._evaluate("test")["test_acc"] == record["test_acc_at_best_val"]
    assert record["eval_seconds"] > 0


def test_bf16_problem_names_what_is_missing():
    assert bf16_problem(torch.device("meta")) is not None
    problem = bf16_problem(torch.device("cpu"))
    assert problem is None or "avx512_bf16" in problem


def test_bf16_auto_uses_bf16_where_the_device_has_it_and_the_record_says_so(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--dataset", "synthetic", "--train-subset", "128", "--epochs", "1", "--bf16", "auto",
                 "--out", str(out), "--no-progress"]) == 0
    native = bf16_problem(torch.device("cpu")) is None
    record = json.loads((out / "result.json").read_text())
    assert record["hyperparameters"]["bf16"] is native and record["config"]["bf16"] is native
    assert json.loads((out / "config.json").read_text())["bf16"] == "auto"  # what was asked: reruns resume
    assert main(["train", "--dataset", "synthetic", "--train-subset", "128", "--epochs", "1", "--bf16", "auto",
                 "--out", str(out), "--no-progress"]) == 0  # finished: nothing to do, no conflict


@pytest.mark.parametrize("argv,where", [
    (["train", "--dataset", "synthetic", "--bf16", "fast"], "--bf16: got 'fast'; accepted: auto"),
])
def test_a_bad_bf16_value_exits_2_naming_the_flag(tmp_path, capsys, argv, where):
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--out", str(tmp_path / "r")])
    assert exit_.value.code == 2 and where in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_bench_prints_json_with_every_measurement(capsys):
    assert main(["bench", "--dataset", "synthetic", "--recipes", "autoaugment", "--methods", "ce", "dlb",
                 "--steps", "2", "--workers", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model_only"]["batch"] > 0
    assert set(result["data_path"]) == {"autoaugment"}  # the batched policy against torchvision's, per sample
    assert set(result["end_to_end"]) == {"autoaugment/ce", "autoaugment/dlb"}
    assert all(math.isfinite(r["ratio"]) and r["ratio"] > 0 for r in result["end_to_end"].values())
    dlb = result["dlb_step"]  # the default forward mode (the official code's two calls) and the joint one
    assert dlb["forward"] == "separate" and dlb["ratio"] > 0 and dlb["joint_ratio"] > 0
    assert dlb["dlb_step_seconds"] > 0 and dlb["ce_2n_step_seconds"] > 0


def test_bench_threads_leave_a_core_to_workers_that_augment_the_policy(capsys):
    threads = torch.get_num_threads()
    try:
        assert main(["bench", "--dataset", "synthetic", "--recipes", "randaugment", "--methods", "ce",
                     "--steps", "2", "--threads", "1", "--workers", "1", "--json"]) == 0
    finally:
        torch.set_num_threads(threads)
    result = json.loads(capsys.readouterr().out)
    assert (result["threads"], result["loader_workers"]) == (1, 1)
    assert math.isfinite(result["end_to_end"]["randaugment/ce"]["ratio"])
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--threads", "0"])
    assert exit_.value.code == 2 and "--threads" in capsys.readouterr().err


def test_bench_reads_the_data_set_from_data_root(tmp_path, capsys):
    # a CIFAR-10-layout folder written by scripts/synthetic_cifar10.py (the device benchmark's input) ...
    subprocess.run([sys.executable, "scripts/synthetic_cifar10.py", str(tmp_path), "--train", "400", "--test", "100"],
                   check=True, capture_output=True, cwd=Path(__file__).parents[1])
    # ... is where every measurement's data comes from (none looks in the cache instead)
    assert main(["bench", "--dataset", "cifar10", "--data-root", str(tmp_path), "--recipes", "cutout",
                 "--methods", "dlb", "--steps", "1", "--workers", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["image_shape"] == [3, 32, 32] and set(result["end_to_end"]) == {"cutout/dlb"}


def test_bench_rejects_a_bad_recipe_with_exit_2(capsys):
    assert main(["bench", "--dataset", "synthetic", "--recipes", "nope", "--steps", "1"]) == 2
    assert "recipe 'nope'" in capsys.readouterr().err


def test_bench_rejects_a_bad_method_before_measuring(capsys):
    assert main(["bench", "--dataset", "synthetic", "--methods", "nope", "--steps", "1"]) == 2
    out, err = capsys.readouterr()
    assert "--method nope" in err and "accepted: ce," in err
    assert "model only" not in out + err  # nothing was measured first


def test_an_op_that_cannot_run_on_the_images_is_named(tmp_path):
    spec = yaml.safe_load(open(find_recipe("baseline")).read())
    spec.update(name="bad", ops=[{"op": "pad_crop", "padding": 4}, {"op": "cutout", "length": 8, "fill": [1, 2]}])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    recipe = load_recipe(str(path))  # two fill values are valid in themselves ...
    with pytest.raises(UsageError, match=r"ops\[1\] \(cutout, a batch op on cpu\).*2 values for a 3-channel"):
        recipe.prepared(10, (3, 32, 32), mean=[0.5, 0.5, 0.5])  # ... but not for three channels


@pytest.mark.parametrize("config", [dict(mixup_alpha=1.0), dict(cutmix_alpha=1.0, prob=0.5),
                                    dict(mixup_alpha=1.0, cutmix_alpha=1.0, switch_prob=0.3),
                                    dict(mixup_alpha=0.4, cutmix_minmax=(0.2, 0.8), prob=0.7)])
def test_mixing_draws_lambda_and_mode_as_timm_does(config):
    """augbench draws the per-batch mode and lambda itself (timm keeps that step private): pinned to timm's."""
    import numpy as np
    from timm.data import Mixup

    from augbench.augment.mixing import BatchMixer, MixConfig

    reference = Mixup(mode="batch", num_classes=10, **{"mixup_alpha": 0.0, **config})
    np.random.seed(1)
    expected = [reference._params_per_batch() for _ in range(300)]
    np.random.seed(1)
    assert [BatchMixer(MixConfig(**config), 10).draw_mode_and_lambda() for _ in range(300)] == expected
