"""A name registered once is usable everywhere: flags, experiment files, recipes, and (through the
``augbench.plugins`` entry-point group) from another installed package."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from augbench.augment.mixing import REPLAY_MIX_POLICIES, register_replay_mix
from augbench.cli import main
from augbench.engine import train
from augbench.errors import UsageError
from augbench.run_folder import METRICS_FILE, RESULT_FILE
from augbench.schedules import SCHEDULES, register_schedule
from augbench.tune.experiment import load_experiment

ROOT = Path(__file__).resolve().parent.parent
QUIET = {"progress": False, "log": lambda _: None}


@pytest.fixture
def half_rate():
    """A schedule that trains at half the base rate throughout."""
    register_schedule("half_rate")(lambda config, total_epochs: (lambda progress: 0.5))
    yield "half_rate"
    del SCHEDULES["half_rate"]


def experiment_file(folder: Path, **fields) -> Path:
    data = {"name": "registered", "dataset": "synthetic", "train_subset": 256, "val_fraction": 0.1,
            "backbones": ["cifar_resnet8"], "recipes": ["baseline"], "methods": ["ce"], "epochs": 1,
            "fixed": {"batch_size": 64, "lr": 0.04}, "final": {"seeds": [0]}, **fields}
    path = folder / "registered.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_registered_schedule_is_a_choice_of_train_schedule(half_rate, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    assert "half_rate" in capsys.readouterr().out


def test_a_registered_schedule_trains_from_an_experiment_file(half_rate, tmp_path):
    experiment = load_experiment(str(experiment_file(tmp_path, fixed={"batch_size": 64, "lr": 0.04,
                                                                     "schedule": "half_rate"})))
    config = experiment.run_config(experiment.cells()[0], {}, seed=0)
    assert config.schedule == "half_rate"
    train(config, tmp_path / "run", **QUIET)
    (epoch,) = [json.loads(line) for line in (tmp_path / "run" / METRICS_FILE).read_text().splitlines()]
    assert epoch["lr"] == pytest.approx(0.02)


def test_an_unregistered_schedule_is_refused_naming_the_registered_ones(half_rate, tmp_path):
    path = experiment_file(tmp_path, fixed={"batch_size": 64, "schedule": "constant"})
    with pytest.raises(UsageError) as err:
        load_experiment(str(path))
    assert "schedule" in str(err.value) and "half_rate" in str(err.value) and "cosine" in str(err.value)


@pytest.fixture
def counted_policy():
    """A replay mixing policy that leaves the replay unmixed and counts how often DLB asked for it."""
    calls = []

    def counted(mix, images, labels, teacher_params):
        calls.append(images.shape[0])
        return images, labels

    register_replay_mix("counted")(counted)
    yield calls
    del REPLAY_MIX_POLICIES["counted"]


def test_a_registered_mix_policy_is_accepted_by_recipes_and_applied_by_dlb(counted_policy, tmp_path,
                                                                            small_config):
    recipe = yaml.safe_load((ROOT / "recipes" / "augment" / "mixup.yaml").read_text())
    recipe.update(name="mixup_counted", dlb_mix="counted")
    path = tmp_path / "mixup_counted.yaml"
    path.write_text(yaml.safe_dump(recipe))
    record = train(small_config(method="dlb", recipe=str(path), epochs=1), tmp_path / "run", **QUIET)
    assert record["status"] == "finished"
    steps = record["train_size"] // 64
    assert counted_policy == [64] * (steps - 1)  # every step but the first, which has nothing to replay


def test_an_unregistered_mix_policy_is_refused_naming_the_registered_ones(tmp_path):
    recipe = yaml.safe_load((ROOT / "recipes" / "augment" / "mixup.yaml").read_text())
    recipe.update(name="mixup_unknown", dlb_mix="sometimes")
    path = tmp_path / "mixup_unknown.yaml"
    path.write_text(yaml.safe_dump(recipe))
    from augbench.augment import load_recipe

    with pytest.raises(UsageError, match=r"field dlb_mix.*shared, independent, clean"):
        load_recipe(str(path))


def test_a_registered_search_sampler_chooses_an_experiments_parameters(tmp_path, capsys):
    import optuna

    from augbench.tune.samplers import SEARCH_SAMPLERS, register_search_sampler

    seeds = []

    def counted(draw):
        seeds.append(draw.seed)
        return optuna.samplers.RandomSampler(seed=draw.seed)

    register_search_sampler("counted_random")(counted)
    try:
        path = experiment_file(tmp_path, search={"trials": 2, "sampler": "counted_random",
                                                 "space": {"ce": {"lr": {"type": "float", "low": 0.01, "high": 0.1}}}})
        assert load_experiment(str(path)).to_dict()["search"]["sampler"] == "counted_random"
        assert main(["tune", str(path), "--out", str(tmp_path / "out"), "--no-wandb", "--device", "cpu"]) == 0
        assert len(seeds) == 3  # one sampler per trial (2 search, 1 final), each from its own seed
        capsys.readouterr()
        assert main(["schema", "experiment"]) == 0
        schema = json.loads(capsys.readouterr().out)
        assert "counted_random" in schema["properties"]["search"]["properties"]["sampler"]["enum"]
    finally:
        del SEARCH_SAMPLERS["counted_random"]
    with pytest.raises(UsageError, match=r"field search.sampler: got 'counted_random'; accepted: one of tpe, random"):
        load_experiment(str(path))


def test_a_registered_storage_kind_serves_tune_and_the_leaderboard(tmp_path, capsys, monkeypatch):
    from optuna.storages.journal import JournalFileBackend

    from augbench.tune.storage import STORAGE_KINDS, JournalStorage, StorageKind, register_storage_kind

    monkeypatch.delenv("AUGBENCH_STORAGE", raising=False)
    journal = tmp_path / "kept.journal"
    opened = []

    def open_(storage, must_exist, flag):  # a "keep://NAME" storage: a journal file NAME.journal in tmp_path
        opened.append((storage, flag))
        if must_exist and not journal.exists():
            raise UsageError(f"{flag} {storage}: nothing kept yet")
        return JournalStorage(JournalFileBackend(str(journal)))

    journal_lock = STORAGE_KINDS["journal"].lock
    register_storage_kind("keep")(StorageKind(open_, lambda storage, name: journal_lock(str(journal), name),
                                              "keep://NAME"))
    try:
        path = experiment_file(tmp_path)
        assert main(["tune", str(path), "--out", str(tmp_path / "out"), "--no-wandb", "--device", "cpu",
                     "--storage", "keep://kept"]) == 0
        assert journal.exists() and opened
        assert main(["leaderboard", "build", "--from", "keep://kept", "--out", str(tmp_path / "board")]) == 0
        assert ("keep://kept", "--from") in opened
        assert "registered-synthetic" in (tmp_path / "board" / "results.csv").read_text()  # the run, from keep://
    finally:
        del STORAGE_KINDS["keep"]
    capsys.readouterr()
    assert main(["tune", str(path), "--out", str(tmp_path / "out2"), "--storage", "keep://kept"]) == 2
    err = capsys.readouterr().err
    assert "--storage keep://kept" in err and "postgresql://USER:PASSWORD@HOST:PORT/DB" in err
    assert not (tmp_path / "out2").exists()


# -- a plugin package ------------------------------------------------------------------------------

PLUGIN = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "augbench-example-plugin"
        version = "0.1.0"

        [project.entry-points."augbench.plugins"]
        example = "augbench_example_plugin"

        [tool.setuptools]
        packages = ["augbench_example_plugin"]

        [tool.setuptools.package-data]
        augbench_example_plugin = ["recipes/*.yaml"]
        """,
    "augbench_example_plugin/__init__.py": '''
        """An augbench plugin: one method, one op, one recipe, one data set and one schedule."""

        from pathlib import Path

        import torch

        from augbench.augment import register_op
        from augbench.augment.recipe import add_recipe_folder
        from augbench.data import register_dataset
        from augbench.data.synthetic import load_synthetic
        from augbench.methods import register_method
        from augbench.methods.ce import CrossEntropy
        from augbench.schedules import register_schedule


        @register_method
        class PluginCE(CrossEntropy):
            name = "plugin_ce"


        @register_op("plugin_invert", kind="batch")
        class Invert:
            def __init__(self, p: float = 0.5):
                self.p = float(p)

            def __call__(self, images, generator):
                invert = torch.rand(images.shape[0], generator=generator, device=images.device) < self.p
                return torch.where(invert.view(-1, 1, 1, 1), 255 - images, images)


        register_dataset("plugin_synthetic")(load_synthetic)
        register_schedule("plugin_half")(lambda config, total_epochs: (lambda progress: 0.5))
        add_recipe_folder(Path(__file__).parent / "recipes")
        ''',
    "augbench_example_plugin/recipes/plugin_invert.yaml": """
        name: plugin_invert
        description: Inverts half the images.
        paper: none
        ops:
          - {op: plugin_invert, p: 0.5}
        """,
}


@pytest.fixture
def installed_plugin(tmp_path):
    source = tmp_path / "plugin"
    for name, text in PLUGIN.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(textwrap.dedent(text).lstrip())
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "install", "--quiet", "--no-deps", "--no-build-isolation", str(source)], check=True,
                   cwd=tmp_path, capture_output=True)
    try:
        yield
    finally:
        subprocess.run([*pip, "uninstall", "--quiet", "--yes", "augbench-example-plugin"], check=True,
                       capture_output=True)


def test_an_installed_plugin_adds_a_method_op_recipe_data_set_and_schedule_to_experiments(installed_plugin,
                                                                                         tmp_path):
    path = experiment_file(tmp_path, dataset="plugin_synthetic", recipes=["plugin_invert"],
                           methods=["plugin_ce"], fixed={"batch_size": 64, "lr": 0.04, "schedule": "plugin_half"})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("AUGBENCH_STORAGE", None)
    run = subprocess.run([sys.executable, "-m", "augbench", "tune", str(path), "--out", str(tmp_path / "out"),
                          "--no-wandb", "--device", "cpu"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    (result,) = (tmp_path / "out").rglob(RESULT_FILE)
    record = json.loads(result.read_text())
    assert (record["dataset"], record["recipe"], record["method"], record["status"]) == (
        "plugin_synthetic", "plugin_invert", "plugin_ce", "finished")
    assert record["hyperparameters"]["schedule"] == "plugin_half"
    methods = subprocess.run([sys.executable, "-m", "augbench", "methods"], capture_output=True, text=True,
                             cwd=tmp_path, env=env, check=True).stdout
    assert "plugin_ce" in methods


def test_a_plugin_that_fails_to_load_is_an_error_naming_it(installed_plugin, tmp_path, monkeypatch):
    import augbench.plugins as plugins

    monkeypatch.setattr(plugins, "_done", False)
    monkeypatch.setattr(plugins, "_loaded", [])
    monkeypatch.setitem(sys.modules, "augbench_example_plugin", None)  # its import now fails
    with pytest.raises(UsageError, match=r"plugin 'example' \(augbench_example_plugin"):
        plugins.load_plugins()


# -- one rule for every registry ------------------------------------------------------------------

def _registries():
    """(registry, register a name -> object) for every registry augbench has."""
    from augbench.augment.ops import OPS, register_op
    from augbench.data.registry import DATASETS, register_dataset
    from augbench.data.samplers import SAMPLERS, register_sampler
    from augbench.leaderboard.metrics import METRICS, Metric, register
    from augbench.methods.registry import METHODS, register_method
    from augbench.tune.samplers import SEARCH_SAMPLERS, register_search_sampler
    from augbench.tune.storage import STORAGE_KINDS, StorageKind, register_storage_kind

    def metric(name, obj):
        return register(Metric(name, "a metric", "a metric", "test_acc", "%", higher_is_better=True)
                        if obj is None else obj)

    def method(name, obj):
        return register_method(obj if obj is not None else type("M", (METHODS["ce"],), {"name": name}))

    return {
        "schedule": (SCHEDULES, lambda n, o: register_schedule(n)(o or (lambda c, e: (lambda p: 1.0)))),
        "replay mix policy": (REPLAY_MIX_POLICIES, lambda n, o: register_replay_mix(n)(o or (lambda *a: a))),
        "augmentation op": (OPS, lambda n, o: register_op(n, "sample")(o or (lambda **a: (lambda x: x)))),
        "data set": (DATASETS, lambda n, o: register_dataset(n)(o or (lambda r, d, s: None))),
        "sampler": (SAMPLERS, lambda n, o: register_sampler(n)(o or (lambda p, b, g: [p]))),
        "metric": (METRICS, metric),
        "method": (METHODS, method),
        "search sampler": (SEARCH_SAMPLERS, lambda n, o: register_search_sampler(n)(o or (lambda draw: None))),
        "storage kind": (STORAGE_KINDS, lambda n, o: register_storage_kind(n)(o or StorageKind(None, None, n))),
    }


@pytest.mark.parametrize("what", list(_registries()))
def test_every_registry_refuses_a_second_entry_under_a_taken_name(what):
    # imports: the registries of every layer, gathered where the test runs
    table, register = _registries()[what]
    name = "test_registry_entry"
    try:
        first = register(name, None)
        assert table[name] is first
        assert register(name, first) is first  # the same object again (a module imported twice): harmless
        with pytest.raises(ValueError, match=f"{what} '{name}' is already registered"):
            register(name, None)
        assert table[name] is first  # the built-in (or first) entry is kept
    finally:
        table.pop(name, None)
        if what == "augmentation op":
            from augbench.augment.ops import OP_KINDS
            OP_KINDS.pop(name, None)


def test_a_registered_metric_is_a_choice_of_leaderboard_build(capsys):
    from augbench.leaderboard.metrics import METRICS, Metric, register

    register(Metric("test_acc_copy", "a registered metric", "copy", "test_acc", "%", higher_is_better=True))
    try:
        with pytest.raises(SystemExit) as exit_:
            main(["leaderboard", "build", "--help"])
        assert exit_.value.code == 0
        assert "test_acc_copy: a registered metric" in capsys.readouterr().out
    finally:
        del METRICS["test_acc_copy"]
    with pytest.raises(SystemExit) as exit_:
        main(["leaderboard", "build", "--from", "runs", "--metric", "test_acc_copy"])
    assert exit_.value.code == 2 and "test_acc_copy" in capsys.readouterr().err
