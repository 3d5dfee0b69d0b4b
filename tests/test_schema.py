"""One declared schema per kind of file: the reader (augbench.schema.read) and the JSON Schema that
`augbench schema` prints come from the same declarations, so they accept and refuse the same files."""

import json
from pathlib import Path
from typing import Annotated

import jsonschema
import pytest
import yaml

from augbench.augment.mixing import REPLAY_MIX_POLICIES, register_replay_mix
from augbench.cli import main
from augbench.errors import UsageError
from augbench.schema import DISTINCT, Invalid, at_least, check, coerce, describe, read, registered
from augbench.tune.experiment import load_experiment

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = {
    "experiment": sorted((ROOT / "recipes" / "experiments").rglob("*.yaml")),
    "recipe": sorted((ROOT / "recipes" / "augment").glob("*.yaml")),
    "protocol": sorted((ROOT / "recipes" / "protocols").glob("*.yaml")),
}


def printed_schema(kind, capsys):
    assert main(["schema", kind]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("kind", sorted(SHIPPED))
def test_every_shipped_file_satisfies_the_printed_schema(kind, capsys):
    validator = printed_schema(kind, capsys)
    assert SHIPPED[kind], f"no shipped {kind} files found"
    for path in SHIPPED[kind]:
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
        assert not errors, (path, errors)


# Mistakes the declarations alone catch: the reader refuses each naming the field, and so does the JSON Schema.
BAD_FIELDS = [
    ({"epochs": "ten"}, "field epochs"),
    ({"methods": ["ce", "nope"]}, "field methods[1]"),
    ({"methods": ["ce", "ce"]}, "field methods"),
    ({"dataset": "imagenet"}, "field dataset"),
    ({"retries": True}, "field retries"),
    ({"fixed": {"lr": "fast"}}, "field fixed.lr"),
    ({"fixed": {"learning_rate": 0.1}}, "unknown field fixed.learning_rate"),
    ({"final": {"seeds": [0, 1.5]}}, "field final.seeds[1]"),
    ({"wandb": {"mode": "cloud"}}, "field wandb.mode"),
    ({"heartbeat": {"every": 3}}, "unknown field heartbeat.every"),
    ({"seeds": [0]}, "unknown field seeds"),
    ({"val_fraction": 1.0}, "field val_fraction"),
    ({"name": "my experiment"}, "field name"),
    ({"search": {"trials": 0}}, "field search.trials"),
]


@pytest.mark.parametrize("change,expected", BAD_FIELDS, ids=[e for _, e in BAD_FIELDS])
def test_the_reader_and_the_json_schema_refuse_the_same_mistakes(tmp_path, capsys, change, expected):
    validator = printed_schema("experiment", capsys)
    good = yaml.safe_load((ROOT / "recipes" / "experiments" / "pruning_savings.yaml").read_text())
    assert not list(validator.iter_errors(good))
    bad = {**good, **change}
    assert list(validator.iter_errors(bad)), change
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(UsageError) as err:
        load_experiment(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_a_registered_mix_policy_appears_in_the_recipe_schema(capsys):
    register_replay_mix("schema_probe")(lambda mix, images, labels, teacher_params: (images, labels))
    try:
        validator = printed_schema("recipe", capsys)
        recipe = yaml.safe_load((ROOT / "recipes" / "augment" / "cutmix.yaml").read_text())
        assert not list(validator.iter_errors({**recipe, "dlb_mix": "schema_probe"}))
    finally:
        del REPLAY_MIX_POLICIES["schema_probe"]
    assert list(printed_schema("recipe", capsys).iter_errors({**recipe, "dlb_mix": "schema_probe"}))


def test_schema_out_writes_the_file_and_a_bad_kind_exits_2(tmp_path, capsys):
    out = tmp_path / "experiment.schema.json"
    assert main(["schema", "experiment", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["title"] == "augbench experiment"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]
    with pytest.raises(SystemExit) as exit_:
        main(["schema", "experimnet"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "experimnet" in err and all(k in err for k in ("recipe", "protocol", "run"))


# -- the checking itself -------------------------------------------------------------------------------

def test_check_names_the_innermost_failing_part():
    seeds = Annotated[list[int], DISTINCT]
    with pytest.raises(Invalid) as err:
        check([0, "1"], seeds, "final.seeds")
    assert err.value.where == "final.seeds[1]" and err.value.accepted == "an integer"
    with pytest.raises(Invalid) as err:
        check([0, 0], seeds, "final.seeds")
    assert err.value.where == "final.seeds" and "without repeated" in err.value.accepted
    names = {"a": 1}
    with pytest.raises(Invalid) as err:
        check({"x": ["a", "b"]}, dict[str, list[registered(names)]], "space")
    assert err.value.where == "space.x[1]" and err.value.accepted == "one of a"
    names["b"] = 2  # a registry is read when a value is checked, not when the annotation was written
    assert check({"x": ["a", "b"]}, dict[str, list[registered(names)]]) == {"x": ["a", "b"]}


@pytest.mark.parametrize("value,tp,expected", [
    (3, float, 3.0), (True, int, None), (1, bool, None), (None, int | None, "none"), ("3", int, None),
    ([1, 2], tuple[int, int], (1, 2)), ([1], tuple[int, int], None), (2, Annotated[int, at_least(3)], None),
    ("auto", bool | str, "auto"), (False, bool | str, False),
])
def test_coerce_follows_yaml_types(value, tp, expected):
    result = coerce(value, tp)
    if expected is None:
        assert result is not value or describe(tp)  # refused
        assert repr(result) == "INVALID"
    elif expected == "none":
        assert result is None
    else:
        assert result == expected and type(result) is type(expected)


def test_read_refuses_unknown_and_missing_fields_naming_the_file(tmp_path):
    from augbench.tune.schema import HeartbeatSection

    assert read(HeartbeatSection, {}, "f.yaml") == HeartbeatSection(30, 120)
    with pytest.raises(UsageError, match=r"^f.yaml: field heartbeat.grace: got 10; accepted: whole seconds > "
                                         r"interval \(30\)$"):
        read(HeartbeatSection, {"grace": 10}, "f.yaml", "heartbeat")
    with pytest.raises(UsageError, match=r"^f.yaml: unknown field heartbeat.beat; accepted: interval, grace$"):
        read(HeartbeatSection, {"beat": 10}, "f.yaml", "heartbeat")


def test_the_experiment_format_in_the_docs_names_every_declared_field():
    import dataclasses

    from augbench.tune import experiment, schema

    doc = experiment.__doc__
    sections = {"search": schema.SearchSection, "final": schema.FinalSection, "heartbeat": schema.HeartbeatSection,
                "wandb": schema.WandbSection, "ddp": schema.DdpSection}
    missing = [f.name for f in dataclasses.fields(schema.ExperimentFile) if f"{f.name}:" not in doc]
    missing += [f"{name}.{f.name}" for name, section in sections.items() for f in dataclasses.fields(section)
                if f.name not in doc]
    assert not missing, f"augbench/tune/experiment.py's docstring does not show: {missing}"


@pytest.mark.parametrize("module,declared", [("augbench.augment.recipe", "RecipeFile"),
                                             ("augbench.protocol", "ProtocolFile")])
def test_the_recipe_and_protocol_formats_in_the_docs_name_every_declared_field(module, declared):
    import dataclasses
    import importlib

    loaded = importlib.import_module(module)
    missing = [f.name for f in dataclasses.fields(getattr(loaded, declared)) if f"{f.name}:" not in loaded.__doc__]
    assert not missing, f"{module}'s docstring does not show: {missing}"


def test_values_keep_the_type_written_so_stored_definitions_keep_their_hash(tmp_path):
    space = {"ce": {"lr": {"type": "float", "low": 1, "high": 2},
                    "weight_decay": {"type": "float", "low": 0, "high": 1, "step": 1}}}
    data = yaml.safe_load((ROOT / "recipes" / "experiments" / "pruning_savings.yaml").read_text())
    path = tmp_path / "ints.yaml"
    path.write_text(yaml.safe_dump({**data, "search": {**data["search"], "space": space}}))
    written = load_experiment(path).to_dict()["search"]["space"]["ce"]
    assert written["lr"]["low"] == 1 and type(written["lr"]["low"]) is int
    assert type(written["weight_decay"]["step"]) is int


def test_a_required_section_left_out_is_reported_missing(tmp_path):
    from augbench.protocol import load_protocol

    path = tmp_path / "nos.yaml"
    path.write_text("name: nos\ndescription: d\nsource: s\n")
    with pytest.raises(UsageError, match=r"nos.yaml: field settings is missing; accepted: a mapping with the fields"):
        load_protocol(str(path))
