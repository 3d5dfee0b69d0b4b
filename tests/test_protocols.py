"""Training protocols (recipes/protocols/*.yaml), the official DLB defaults and equal-compute budgets."""

import json
from pathlib import Path

import pytest

from augbench.cli import main
from augbench.config import RunConfig, default_milestones
from augbench.errors import UsageError
from augbench.protocol import list_protocols, load_protocol, resolve_config
from augbench.tune.experiment import load_experiment, parse_experiment

PROTOCOLS = list(list_protocols())


def test_defaults_are_the_official_dlb_code_values():
    # Meta-knowledge-Lab/DLB base.py: --lr 0.05 --batch_size 64 --momentum 0.9 --weight-decay 5e-4 --gamma 0.1,
    # --milestones 150 180 210 of --epoch 240; SGD(nesterov=True).
    d = RunConfig()
    assert (d.lr, d.batch_size, d.momentum, d.nesterov, d.weight_decay, d.gamma, d.schedule) == \
        (0.05, 64, 0.9, True, 5e-4, 0.1, "multistep")
    assert RunConfig(epochs=240).resolved_milestones() == [150, 180, 210]


@pytest.mark.parametrize("epochs", range(1, 301))
def test_default_milestones_are_distinct_and_inside_the_run(epochs):
    milestones = default_milestones(epochs)
    assert milestones == sorted(set(milestones))
    assert all(0 < m < epochs for m in milestones)
    if epochs >= 8:
        assert len(milestones) == 3


def test_train_help_shows_the_official_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("--protocol", "default: 0.05", "default: 64", "62.5%/75%/87.5%", "Meta-knowledge-Lab/DLB base.py"):
        assert shown in text


@pytest.mark.parametrize("name", PROTOCOLS)
def test_every_shipped_protocol_loads_and_names_its_source(name):
    protocol = load_protocol(name)
    assert protocol.source.strip() and protocol.description.strip()
    config = resolve_config({}, name)
    config.validate()
    assert config.protocol == name


def test_dlb_paper_cifar_is_the_official_schedule():
    config = resolve_config({}, "dlb_paper_cifar")
    assert (config.epochs, config.lr, config.batch_size, config.milestones) == (240, 0.05, 64, [150, 180, 210])
    assert config.model == load_protocol("dlb_paper_cifar").backbones[0]
    # Given epochs rescale the protocol's (empty = official fractions) milestones instead of keeping 150/180/210.
    assert resolve_config({"epochs": 40}, "dlb_paper_cifar").milestones == [25, 30, 35]


def test_protocols_are_found_from_any_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no recipes/protocols here: the copy installed with the package answers
    assert set(list_protocols()) == set(PROTOCOLS)
    assert load_protocol("cpu_short").settings["batch_size"] == 64


def test_a_flag_overrides_the_protocol_and_the_record_stores_both(tmp_path):
    out = tmp_path / "run"
    code = main(["train", "--protocol", "cpu_short", "--dataset", "synthetic", "--train-subset", "128",
                 "--epochs", "2", "--lr", "0.02", "--out", str(out), "--no-progress"])
    assert code == 0
    record = json.loads((out / "result.json").read_text())
    config = record["config"]
    assert config["protocol"] == "cpu_short"
    assert config["lr"] == 0.02 and record["hyperparameters"]["lr"] == 0.02       # the flag won
    assert config["batch_size"] == 64 and config["epochs"] == 2                     # the protocol, the flag
    assert config["model"] == "cifar_resnet8" and config["milestones"] == [1]       # its backbone; 62.5% of 2


def _write(path, text):
    path.write_text(text)
    return str(path)


BAD_PROTOCOLS = [
    ("name: bad\ndescription: x\nsource: y\nsettings: {lr: 0.1, learning_rate: 0.2}\n", "settings.learning_rate"),
    ("name: bad\ndescription: x\nsource: y\nsettings: {lr: fast}\n", "settings.lr"),
    ("name: bad\ndescription: x\nsource: y\nsettings: {dataset: cifar10}\n", "settings.dataset"),
    ("name: bad\ndescription: x\nsource: y\nsettings: {bf16: sometimes}\n", "settings.bf16"),
    ("name: bad\ndescription: x\nsource: y\nsettings: {epochs: 10, milestones: [5, 12]}\n", "settings.milestones"),
    ("name: bad\ndescription: x\nsettings: {}\n", "field source"),
    ("name: bad\ndescription: x\nsource: y\nsettings: {}\nseeds: [1]\n", "field seeds"),
]


@pytest.mark.parametrize("text,field", BAD_PROTOCOLS, ids=[f for _, f in BAD_PROTOCOLS])
def test_a_bad_protocol_file_exits_2_naming_file_and_field(tmp_path, capsys, text, field):
    path = _write(tmp_path / "bad.yaml", text)
    out = tmp_path / "run"
    code = main(["train", "--protocol", path, "--dataset", "synthetic", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert path in err and field in err
    assert not out.exists()


def test_an_unknown_protocol_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--protocol", "no_such_protocol", "--dataset", "synthetic", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no_such_protocol" in err and "dlb_paper_cifar" in err
    assert not out.exists()


def experiment(**fields):
    data = {"name": "p", "dataset": "synthetic", "recipes": ["baseline"], "methods": ["ce", "dlb"],
            "search": {"space": {}}, **fields}
    return parse_experiment(data, "exp.yaml")


def test_an_experiment_takes_a_protocol_and_its_own_fields_win():
    exp = experiment(protocol="dlb_paper_cifar", fixed={"lr": 0.1}, epochs=16)
    assert exp.backbones == list(load_protocol("dlb_paper_cifar").backbones)
    config = exp.run_config(exp.cells()[0], {}, seed=0)
    assert config.protocol == "dlb_paper_cifar"
    assert config.lr == 0.1 and config.batch_size == 64 and config.epochs == 16
    assert config.milestones == [10, 12, 14]
    assert exp.definition()["protocol"]["name"] == "dlb_paper_cifar"


def test_an_experiment_without_a_protocol_keeps_its_definition_shape():
    exp = experiment(backbones=["cifar_resnet8"], epochs=2)
    assert "protocol" not in exp.definition() and exp.definition()["budget"] == "epochs"


def test_budget_list_is_an_axis_of_the_grid():
    exp = experiment(backbones=["cifar_resnet8"], epochs=4, budget=["epochs", "samples"])
    cells = exp.cells()
    assert {c.budget for c in cells if c.method == "dlb"} == {"epochs", "samples"}  # DLB forwards twice per sample
    assert {c.budget for c in cells if c.method == "ce"} == {"epochs"}  # CE's samples run would repeat it
    assert len({c.id for c in cells}) == len(cells)
    by_id = {c.id: c for c in cells}
    assert by_id["synthetic.cifar_resnet8.baseline.dlb.clean"].budget == "epochs"
    assert exp.run_config(by_id["synthetic.cifar_resnet8.baseline.dlb.clean.samples"], {}, 0).budget == "samples"
    assert exp.definition()["budget"] == ["epochs", "samples"]


@pytest.mark.parametrize("fields,where", [
    ({"protocol": "no_such_protocol", "backbones": ["cifar_resnet8"], "epochs": 2}, "field protocol"),
    ({"backbones": ["cifar_resnet8"], "epochs": 2, "budget": ["epochs", "flops"]}, "field budget[1]"),
    ({"backbones": ["cifar_resnet8"], "epochs": 2, "budget": ["epochs", "epochs"]}, "field budget"),
    ({"backbones": ["cifar_resnet8"]}, "field epochs"),
])
def test_bad_protocol_or_budget_in_an_experiment_names_the_field(fields, where):
    with pytest.raises(UsageError) as err:
        experiment(**fields)
    assert str(err.value).startswith("exp.yaml") and where in str(err.value)


EXPERIMENTS = sorted(Path("recipes/experiments").rglob("*.yaml"))  # a group's parts sit in subfolders


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[str(p.relative_to("recipes/experiments")) for p in EXPERIMENTS])
def test_shipped_experiments_that_compare_methods_use_both_budgets(path):
    exp = load_experiment(path)
    if len(exp.methods) > 1:
        assert exp.budgets == ["epochs", "samples"]
    assert "official" not in path.read_text().lower()  # settings come from a named protocol, not a claim
