"""A name registered once is usable everywhere: flags, experiment files and recipes."""

import json
from pathlib import Path

import pytest
import yaml

from augbench.augment.mixing import REPLAY_MIX_POLICIES, register_replay_mix
from augbench.cli import main
from augbench.engine import train
from augbench.errors import UsageError
from augbench.run_folder import METRICS_FILE
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

    with pytest.raises(UsageError, match=r"field 'dlb_mix'.*'shared', 'independent', 'clean'"):
        load_recipe(str(path))
