"""Augmentation recipes: every shipped recipe trains with ce and dlb, mixing is replayable, bad files exit 2.

Recipes are found through the registry (the recipes/augment folder), so a new
recipe file is covered without touching this file.
"""

import json
import math
import shutil

import numpy as np
import pytest
import torch
import yaml
from timm.data.mixup import cutmix_bbox_and_lam

from augbench.augment import DLB_MIX_POLICIES, OPS, list_recipes, load_recipe
from augbench.augment.erasing import Cutout
from augbench.augment.mixing import MixParams, cutmix_box
from augbench.augment.pipeline import Pipeline
from augbench.cli import main
from augbench.engine import Callback, build, train
from augbench.errors import UsageError
from augbench.losses import kd_kl
from augbench.methods import Batch
from augbench.methods import dlb as dlb_module

RECIPES = list_recipes()
SHIPPED = {"baseline", "cutout", "autoaugment", "randaugment", "trivialaugment", "mixup", "cutmix", "mixup_cutmix"}
MIXING = [name for name in RECIPES if load_recipe(name).mix is not None]
QUIET = {"progress": False, "log": lambda _: None}


def test_the_standard_recipes_are_shipped():
    assert SHIPPED <= set(RECIPES)
    assert {"mixup", "cutmix", "mixup_cutmix"} <= set(MIXING)
    uses_albumentations = [n for n in RECIPES if any(op == "albumentations" for op, _ in load_recipe(n).pipeline.spec)]
    assert uses_albumentations, "at least one recipe must be built from albumentations transforms"


def test_the_recipe_schema_accepts_exactly_the_registered_mix_policies():
    assert tuple(DLB_MIX_POLICIES) == ("shared", "independent", "clean")
    assert DLB_MIX_POLICIES is dlb_module.REPLAY_MIX_POLICIES  # the one registry DLB applies


def training_steps(setup, steps=2):
    """Runs ``steps`` optimizer steps as the engine does; returns the step outputs."""
    optimizer = torch.optim.SGD(setup.model.parameters(), lr=0.05, momentum=0.9)
    outputs = []
    setup.model.train()
    for i, (views, labels, index) in enumerate(setup.loader.epoch(0)):
        if i == steps:
            break
        batch = Batch(views, labels, index, setup.recipe.mixer, setup.recipe.mix_policy)
        out = setup.method.step(setup.model, batch)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        outputs.append(out)
    return outputs


@pytest.mark.parametrize("method", ["ce", "dlb"])
@pytest.mark.parametrize("dataset", ["synthetic_gray", "synthetic"])
@pytest.mark.parametrize("recipe", list(RECIPES))
def test_every_recipe_trains_a_step(small_config, recipe, dataset, method):
    setup = build(small_config(dataset=dataset, recipe=recipe, method=method, batch_size=16, train_subset=64))
    assert setup.recipe.name == recipe
    assert (setup.recipe.mixer is not None) == (recipe in MIXING)
    outputs = training_steps(setup)
    assert all(math.isfinite(out.loss.item()) for out in outputs)
    if method == "dlb":  # the second step distils the replayed batch
        assert "kd" in outputs[1].parts and outputs[1].forward_samples == 32


@pytest.mark.parametrize("name", MIXING)
def test_mixed_targets_are_probability_vectors(name):
    mixer = load_recipe(name).prepared(10, (3, 32, 32)).mixer
    np.random.seed(0)
    labels = torch.randint(0, 10, (16,), generator=torch.Generator().manual_seed(1))
    images = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    modes = set()
    for _ in range(20):
        params = mixer.sample(16, (32, 32))
        modes.add(params.mode)
        mixed, targets = mixer.apply(images, labels, params)
        assert targets.shape == (16, 10) and mixed.shape == images.shape
        assert torch.all(targets >= 0) and torch.allclose(targets.sum(1), torch.ones(16))
        assert sorted(params.partner.tolist()) == list(range(16))  # a permutation of the batch
        one_hot = torch.nn.functional.one_hot(labels, 10).float()
        expected = params.lam * one_hot + (1 - params.lam) * one_hot[params.partner]
        torch.testing.assert_close(targets, expected)
        if params.mode == "cutmix":  # lambda is the share of the image that stayed the sample's own
            top, bottom, left, right = params.box
            assert params.lam == pytest.approx(1 - (bottom - top) * (right - left) / (32 * 32))
    assert modes & {"mixup", "cutmix"}
    # Soft labels (PS-KD's targets) mix linearly like one-hot labels.
    soft = torch.softmax(torch.randn(16, 10), 1)
    params = mixer.sample(16, (32, 32))
    _, targets = mixer.apply(images, soft, params)
    torch.testing.assert_close(targets, params.lam * soft + (1 - params.lam) * soft[params.partner])


@pytest.mark.parametrize("correct_lam", [True, False])
def test_cutmix_box_is_timms_box_draw_for_draw(correct_lam):
    """augbench's copy of timm's CutMix box gives timm's box and lambda from the same numpy state."""
    for size in [(32, 32), (28, 28), (7, 13), (64, 40)]:
        for seed in range(200):
            lam = np.random.default_rng(seed).beta(1.0, 1.0)
            np.random.seed(seed)
            ours = cutmix_box(size, lam, correct_lam)
            after_ours = np.random.rand()
            np.random.seed(seed)
            (top, bottom, left, right), timms_lam = cutmix_bbox_and_lam(size, lam, correct_lam=correct_lam)
            assert ours == ((int(top), int(bottom), int(left), int(right)), timms_lam)
            assert np.random.rand() == after_ours  # the same draws were taken


def reference_mix(images, params: MixParams):
    """Mixup / CutMix written out per sample, independently of BatchMixer.apply."""
    if params.mode == "mixup":
        return params.lam * images + (1 - params.lam) * images[params.partner]
    out = images.clone()
    if params.mode == "cutmix":
        top, bottom, left, right = params.box
        for i, j in enumerate(params.partner.tolist()):
            out[i, :, top:bottom, left:right] = images[j, :, top:bottom, left:right]
    return out


def recipe_with_policy(tmp_path, base, policy):
    spec = yaml.safe_load(RECIPES[base].read_text())
    spec["name"], spec["dlb_mix"] = f"{base}_{policy}", policy
    path = tmp_path / f"{base}_{policy}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def dlb_replay(small_config, recipe):
    """Two DLB steps (after a batch that mixed); returns the model inputs, logits, views and mixing of each step."""
    setup = build(small_config(dataset="synthetic", recipe=recipe, method="dlb", batch_size=16, train_subset=160,
                               seed=5))
    inputs, logits = [], []
    setup.model.register_forward_pre_hook(lambda module, args: inputs.append(args[0].detach().clone()))
    setup.model.register_forward_hook(lambda module, args, out: logits.append(out.detach().clone()))
    history = []
    for views, labels, index in setup.loader.epoch(0):
        inputs.clear()
        logits.clear()
        out = setup.method.step(setup.model, Batch(views, labels, index, setup.recipe.mixer, setup.recipe.mix_policy))
        history.append({"views": views, "labels": labels, "inputs": list(inputs), "logits": list(logits),
                        "mix": setup.method.replay_mix, "out": out})
        if len(history) >= 2 and history[-2]["mix"].lam < 1:  # the previous batch was mixed (a non-empty box)
            return history[-2], history[-1]
    raise AssertionError("no batch of the epoch was mixed")


@pytest.mark.parametrize("name", ["mixup", "cutmix", "mixup_cutmix"])
def test_dlb_shared_replays_the_same_partners_lambda_and_box(small_config, name):
    previous, current = dlb_replay(small_config, name)
    params = previous["mix"]
    n = len(previous["labels"])
    assert sorted(params.partner.tolist()) == list(range(n)) and params.partner.tolist() != list(range(n))
    assert 0 < params.lam < 1
    if params.mode == "cutmix":
        top, bottom, left, right = params.box
        assert 0 <= top < bottom <= 32 and 0 <= left < right <= 32
        assert params.lam == pytest.approx(1 - (bottom - top) * (right - left) / 32**2)
    # Step t-1 mixed view 0 of its batch with these parameters ...
    torch.testing.assert_close(previous["inputs"][0], reference_mix(previous["views"][0], params), rtol=0, atol=1e-6)
    # ... and step t replays view 1 of that batch with exactly the same partners, lambda and box
    # (separate forwards: current batch first, replay second).
    current_input, replay_input = current["inputs"]
    torch.testing.assert_close(replay_input, reference_mix(previous["views"][1], params), rtol=0, atol=1e-6)
    assert not torch.equal(previous["views"][0], previous["views"][1])  # the views were drawn independently
    # The teacher is step t-1's output on its mixed batch; the student is the replayed mixture.
    teacher, student = previous["logits"][0], current["logits"][1]
    assert current["out"].parts["kd"] == pytest.approx(kd_kl(student, teacher, 3.0).item(), rel=1e-5)


def test_dlb_independent_and_clean_replay_as_the_recipe_says(tmp_path, small_config):
    previous, current = dlb_replay(small_config, recipe_with_policy(tmp_path, "mixup", "clean"))
    torch.testing.assert_close(current["inputs"][1], previous["views"][1], rtol=0, atol=0)  # unmixed replay
    previous, current = dlb_replay(small_config, recipe_with_policy(tmp_path, "mixup", "independent"))
    replay = current["inputs"][1]
    shared = reference_mix(previous["views"][1], previous["mix"])
    assert not torch.allclose(replay, shared, atol=1e-3)
    assert not torch.allclose(replay, previous["views"][1], atol=1e-3)  # mixed, but afresh


class Crash(Callback):
    def on_epoch_end(self, metrics):
        if metrics["epoch"] == 1:
            raise RuntimeError("simulated crash")


def test_mixing_run_records_the_recipe_and_resumes_exactly(tmp_path, small_config):
    recipe = shutil.copy(RECIPES["cutmix"], tmp_path / "cutmix.yaml")
    config = small_config(method="dlb", recipe=str(recipe), epochs=2, batch_size=32, train_subset=256)
    straight = train(config, tmp_path / "straight", **QUIET)
    assert straight["recipe"] == "cutmix"
    assert straight["recipe_spec"]["mix"]["cutmix_alpha"] == 1.0
    assert straight["recipe_spec"]["ops"][0] == {"op": "pad_crop", "padding": 4, "fill": 0}
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config, tmp_path / "resumed", callbacks=[Crash()], **QUIET)
    resumed = train(config, tmp_path / "resumed", resume=True, **QUIET)
    assert resumed["test_acc"] == straight["test_acc"] and resumed["test_nll"] == straight["test_nll"]


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)], ids=["gray28", "rgb32"])
@pytest.mark.parametrize("op", sorted(OPS))
def test_every_op_keeps_size_and_dtype(op, shape):
    example = {"albumentations": {"transform": "Affine", "args": {"rotate": [-20, 20], "p": 1.0}}}
    pipeline = Pipeline.from_spec([(op, example.get(op, {}))])
    torch.manual_seed(0)
    images = torch.randint(0, 256, (8, *shape), dtype=torch.uint8)
    out = pipeline(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8


def test_cutout_hole_is_scaled_for_28_px():
    cutout = Cutout(length=16, reference_size=32)
    assert cutout.hole_side(32, 32) == 16 and cutout.hole_side(28, 28) == 14
    torch.manual_seed(0)
    filled = [(cutout.sample(torch.full((1, 28, 28), 255, dtype=torch.uint8)) == 0).sum().item() for _ in range(200)]
    assert max(filled) == 14 * 14 and min(filled) < 14 * 14  # holes at the border are clipped


def test_albumentations_views_are_reproducible_and_independent(small_config):
    def views(seed):
        setup = build(small_config(dataset="synthetic_gray", recipe="albumentations_affine", method="dlb",
                                   batch_size=16, train_subset=64, seed=seed))
        return next(iter(setup.loader.epoch(0)))[0]

    a, b, other = views(1), views(1), views(2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], a[1]) and not torch.equal(a[0], other[0])


def test_recipes_are_found_outside_the_project_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert set(list_recipes()) == set(RECIPES)
    assert load_recipe("cutout").name == "cutout"


def test_recipes_list_and_show(tmp_path, capsys):
    assert main(["recipes", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in RECIPES)
    out = tmp_path / "grid.png"
    assert main(["recipes", "show", "mixup_cutmix", "--dataset", "synthetic_gray", "--out", str(out),
                 "--samples", "4"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]
    assert main(["recipes", "show", "cutout", "--dataset", "synthetic", "--out", str(tmp_path / "no" / "g.png")]) == 2
    assert "--out" in capsys.readouterr().err


BASE = {"name": "bad", "description": "d", "paper": "p", "ops": [{"op": "pad_crop", "padding": 4}, {"op": "flip"}]}


def with_ops(*ops):
    return {**BASE, "ops": [*BASE["ops"], *ops]}


# (id, recipe content, fragments the message must contain besides the file name)
BAD_RECIPES = [
    ("unknown op", with_ops({"op": "cutoutt"}), ["ops[2]", "unknown operation 'cutoutt'", "accepted:", "cutout"]),
    ("unknown argument", with_ops({"op": "cutout", "size": 16}),
     ["ops[2] (cutout)", "unknown field size", "length (an integer)"]),
    ("wrong type", with_ops({"op": "cutout", "length": "big"}), ["ops[2] (cutout)", "field length", "an integer"]),
    ("out of range", with_ops({"op": "flip", "p": 1.5}), ["ops[2] (flip)", "field p", "1.5", "[0, 1]"]),
    ("bad choice", with_ops({"op": "autoaugment", "policy": "cifar100"}),
     ["ops[2] (autoaugment)", "field policy", "one of cifar10, svhn, imagenet"]),
    ("unknown albumentations transform", with_ops({"op": "albumentations", "transform": "HorizontalFlipp"}),
     ["ops[2] (albumentations)", "field transform", "HorizontalFlip"]),
    ("unknown albumentations argument", with_ops({"op": "albumentations", "transform": "HorizontalFlip",
                                                  "args": {"q": 1}}),
     ["ops[2] (albumentations)", "field args.q", "p"]),
    ("wrong albumentations value", with_ops({"op": "albumentations", "transform": "CoarseDropout",
                                             "args": {"num_holes_range": 5}}),
     ["ops[2] (albumentations)", "field args.num_holes_range", "CoarseDropout"]),
    ("op changes the image size", with_ops({"op": "albumentations", "transform": "Resize",
                                            "args": {"height": 16, "width": 16}}),
     ["ops[2] (albumentations", "turns 3x32x32", "size"]),
    ("op entry not a mapping", {**BASE, "ops": ["flip"]}, ["ops[0]", "'op'"]),
    ("unknown mix field", {**BASE, "mix": {"mixup_alhpa": 1.0}}, ["mix", "unknown field mixup_alhpa", "mixup_alpha"]),
    ("mix value out of range", {**BASE, "mix": {"mixup_alpha": 1.0, "prob": 2}}, ["mix", "field prob", "[0, 1]"]),
    ("mix that mixes nothing", {**BASE, "mix": {"prob": 1.0}}, ["mix", "mixup_alpha > 0 or cutmix_alpha > 0"]),
    ("bad dlb_mix", {**BASE, "dlb_mix": "both"}, ["field dlb_mix", "shared, independent, clean"]),
    ("unknown top-level field", {**BASE, "opps": []}, ["unknown field opps", "accepted: name"]),
    ("missing field", {k: v for k, v in BASE.items() if k != "paper"}, ["field paper is missing"]),
    ("name differs from file", {**BASE, "name": "good"}, ["field name", "'bad'"]),
    ("not YAML", "name: bad\nops: [\n", ["not valid YAML", "line"]),
    ("override for an unknown data set", {**BASE, "per_dataset": {"imagenet21k": {"flip": {"p": 0.2}}}},
     ["per_dataset.imagenet21k", "unknown data set", "cifar100"]),
    ("override of an op the recipe lacks", {**BASE, "per_dataset": {"cifar100": {"cutout": {"length": 8}}}},
     ["per_dataset.cifar100.cutout", "no such operation", "pad_crop"]),
    ("override with an unknown op field", {**with_ops({"op": "cutout"}),
                                           "per_dataset": {"cifar100": {"cutout": {"size": 8}}}},
     ["per_dataset.cifar100.cutout (cutout)", "unknown field size", "length (an integer)"]),
    ("override with a bad value", {**BASE, "per_dataset": {"synthetic": {"flip": {"p": 2}}}},
     ["per_dataset.synthetic.flip (flip)", "field p", "[0, 1]"]),
]


@pytest.mark.parametrize("content,fragments", [(c, f) for _, c, f in BAD_RECIPES], ids=[i for i, _, _ in BAD_RECIPES])
@pytest.mark.parametrize("command", ["train", "show"])
def test_bad_recipe_exits_2_naming_file_and_field(tmp_path, capsys, content, fragments, command):
    path = tmp_path / "bad.yaml"
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
    out = tmp_path / "out"
    if command == "train":
        code = main(["train", "--dataset", "synthetic", "--recipe", str(path), "--epochs", "1", "--out", str(out)])
    else:
        out.mkdir()
        code = main(["recipes", "show", str(path), "--dataset", "synthetic", "--out", str(out / "grid.png")])
    err = capsys.readouterr().err
    assert code == 2
    assert str(path) in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert not out.exists() or not any(out.iterdir())


def test_unknown_recipe_name_lists_the_known_ones(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "synthetic", "--recipe", "cutout16", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "recipe 'cutout16'" in err and "cutout" in err and "mixup" in err
    assert not out.exists()


def test_recipe_spec_is_json_serializable():
    for name in RECIPES:
        json.dumps(load_recipe(name).spec)


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_shipped_recipe_names_its_paper_and_source(name):
    spec = load_recipe(name).spec
    assert spec["paper"].strip() and spec["source"].strip()


def test_per_dataset_settings_resolve_for_the_data_set():
    def lengths(dataset):
        return [op["length"] for op in load_recipe("cutout", dataset=dataset).spec["ops"] if op["op"] == "cutout"]

    # Cutout (uoguelph-mlrg/Cutout README): 16 px on CIFAR-10, 8 px on CIFAR-100.
    assert lengths("cifar10") == [16] and lengths("cifar100") == [8] and lengths(None) == [16]
    assert load_recipe("cutout", dataset="cifar100").spec["dataset"] == "cifar100"

    def n_and_m(dataset):
        (op,) = [op for op in load_recipe("randaugment", dataset=dataset).spec["ops"] if op["op"] == "randaugment"]
        return op["num_ops"], op["magnitude"]

    assert n_and_m("cifar10") == (3, 5) and n_and_m("cifar100") == (2, 14) and n_and_m("fashion_mnist") == (3, 5)


def test_mean_fills_where_the_original_code_masks_after_normalising():
    def fills(name):
        return {op["op"]: op.get("fill") for op in load_recipe(name).spec["ops"]}

    assert fills("cutout") == {"pad_crop": 0, "flip": None, "cutout": "mean"}
    assert fills("autoaugment") == {"autoaugment": "mean", "pad_crop": "mean", "flip": None, "cutout": "mean"}
    assert fills("randaugment")["randaugment"] == "mean" and fills("trivialaugment")["trivialaugment"] == 0


def overriding_recipe(tmp_path, **extra):
    path = tmp_path / "holes.yaml"
    path.write_text(yaml.safe_dump({
        "name": "holes", "description": "d", "paper": "p", **extra,
        "ops": [{"op": "pad_crop", "padding": 4}, {"op": "cutout", "length": 16, "fill": "mean"}],
        "per_dataset": {"synthetic": {"cutout": {"length": 4}}, "cifar100": {"ops[1]": {"length": 8}}},
    }, sort_keys=False))
    return path


def test_a_run_records_the_settings_resolved_for_its_data_set(tmp_path, small_config):
    path = overriding_recipe(tmp_path)  # a user's recipe elsewhere may leave out source
    record = train(small_config(recipe=str(path), epochs=1, train_subset=128), tmp_path / "run", **QUIET)
    spec = record["recipe_spec"]
    assert spec["dataset"] == "synthetic" and spec["source"] is None
    assert [op["length"] for op in spec["ops"] if op["op"] == "cutout"] == [4]
    assert [op["fill"] for op in spec["ops"] if op["op"] == "cutout"] == [spec["fill_mean"]]  # 'mean' as numbers
    assert [op["length"] for op in load_recipe(str(path), dataset="cifar100").spec["ops"][1:]] == [8]


def test_recipes_show_prints_the_settings_resolved_for_the_data_set(tmp_path, capsys):
    path = overriding_recipe(tmp_path)
    assert main(["recipes", "show", str(path), "--dataset", "synthetic", "--out", str(tmp_path / "g.png"),
                 "--samples", "2"]) == 0
    printed = capsys.readouterr().out
    assert "resolved for synthetic" in printed and "cutout: length=4" in printed
    assert "fill=mean" not in printed  # the data set's mean, as numbers


def test_a_shipped_recipe_must_name_its_source(tmp_path, monkeypatch):
    import augbench.augment.recipe as recipe_module

    path = overriding_recipe(tmp_path)
    monkeypatch.setattr(recipe_module, "shipped_recipe_dir", lambda: tmp_path)
    with pytest.raises(UsageError) as err:
        load_recipe(str(path))
    assert str(path) in str(err.value) and "field source is missing" in str(err.value)
    assert load_recipe(str(overriding_recipe(tmp_path, source="README.md"))).spec["source"] == "README.md"
