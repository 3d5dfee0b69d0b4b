"""RunConfig declares each field once: its ``augbench train`` flag and whether an experiment may fix it. The
flags, the reproduce command and the experiment's ``fixed`` fields all come from that declaration."""

import dataclasses

import pytest

from augbench.cli import build_parser, parse_key_values
from augbench.config import FIELD_FLAGS, FIXED_FIELDS, RunConfig
from augbench.errors import FieldError
from augbench.protocol import resolve_config
from augbench.tune.grid import SEARCHABLE_FIELDS
from augbench.tune.reproduce import train_command


def train_parser():
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if a.dest == "command"]
    return subparsers.choices["train"]


def test_every_declared_flag_is_an_option_of_augbench_train():
    options = {s for action in train_parser()._actions for s in action.option_strings}
    assert set(FIELD_FLAGS.values()) <= options


def test_fields_without_a_flag_are_the_ones_an_experiment_cannot_set():
    no_flag = {f.name for f in dataclasses.fields(RunConfig)} - set(FIELD_FLAGS)
    assert no_flag == {"nesterov", "eval_batch_size"}
    assert not no_flag & set(FIXED_FIELDS) and not no_flag & set(SEARCHABLE_FIELDS)


def test_an_experiment_fixes_exactly_the_declared_training_hyperparameters():
    assert FIXED_FIELDS == ("batch_size", "lr", "momentum", "weight_decay", "schedule", "milestones", "gamma",
                            "warmup_epochs", "channels_last", "bf16")


@pytest.mark.parametrize("config", [
    RunConfig(),
    RunConfig(dataset="synthetic", model="cifar_resnet20", method="dlb", method_args={"temperature": 4.5},
              recipe="cutout", epochs=12, budget="samples", batch_size=32, lr=0.1, momentum=0.8,
              weight_decay=1e-4, schedule="cosine", milestones=[3, 7], gamma=0.2, warmup_epochs=1.5, seed=7,
              val_fraction=0.2, train_subset=500, image_size=40, label_noise="sym:0.2", channels_last=False,
              bf16=True, protocol="cpu_short"),
    RunConfig(bf16="auto"),
], ids=["defaults", "every_flag", "bf16_auto"])
def test_the_reproduce_command_parses_back_to_the_same_configuration(config):
    command = train_command(config, "out")
    args = train_parser().parse_args(command[2:])
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig)
             if hasattr(args, f.name) and f.name != "protocol"}
    given["method_args"] = {k: float(v) for k, v in parse_key_values(args.method_arg, "--method-arg").items()}
    resolved = resolve_config(given, protocol=args.protocol)
    assert resolved == config.with_milestones_written()


def test_a_bad_value_names_its_field_and_flag():
    with pytest.raises(FieldError) as err:
        RunConfig(warmup_epochs=9, epochs=5).validate()
    assert err.value.field == "warmup_epochs"
    assert str(err.value).startswith("--warmup-epochs: got 9; accepted:")
