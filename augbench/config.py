"""The validated configuration of one training run."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from augbench import schema
from augbench.errors import FieldError, UsageError
from augbench.schedules import SCHEDULES

BUDGETS = ("epochs", "samples")
_OFFICIAL = "the official DLB code's, Meta-knowledge-Lab/DLB base.py"
#: Where the official DLB code decays the rate, as fractions of the run: epochs 150, 180 and 210 of 240
#: (``--milestones`` and ``--epoch`` defaults of ``base.py`` in Meta-knowledge-Lab/DLB).
DEFAULT_MILESTONE_FRACTIONS = (0.625, 0.75, 0.875)


def _field(default: Any = dataclasses.MISSING, *, flag: str | None, fixed: bool = False, factory: Any = None,
           accepted: str | None = None, help: str = "", minimum: int | None = None, metavar: str | None = None,
           choices: Any = None, value: str | None = None):
    """A RunConfig field, declared once; everything else is derived from the declaration.

    - ``flag``: its ``augbench train`` flag (None: it has none and must keep its default); ``augbench.cli``
      builds the option from the field's type and the keys below, and ``tune.reproduce`` writes it back.
    - ``fixed``: an experiment file may set it for every cell under ``fixed`` (``tune.grid.FIXED_FIELDS``).
    - ``accepted``: what it accepts, where its type says too little (``field_accepted``).
    - ``help``: the flag's help; ``{default}`` stands for the default value.
    - ``minimum``: the least integer the flag accepts; ``metavar``: the flag's placeholder; ``choices``: a
      function returning the accepted names (a registry's current keys); ``value``: the one word a boolean
      flag also takes (``--bf16 auto``).
    """
    metadata = {"flag": flag, "fixed": fixed, "accepted": accepted, "help": help, "minimum": minimum,
                "metavar": metavar, "choices": choices, "value": value}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class RunConfig:
    """Everything that determines a run's result (and nothing that doesn't).

    The optimiser defaults are the official DLB code's (Meta-knowledge-Lab/DLB):
    ``base.py``'s argparse defaults ``--lr 0.05``, ``--batch_size 64``,
    ``--momentum 0.9``, ``--weight-decay 5e-4``, ``--gamma 0.1`` and
    ``--milestones 150 180 210`` of ``--epoch 240``, and ``optim.SGD(...,
    nesterov=True)`` with ``MultiStepLR`` in both ``base.py`` and ``dlb.py``
    (``dlb.py`` has no defaults for the rate, batch size, epochs and
    milestones: they are given on its command line). ``epochs`` defaults to a
    short CPU run, not to the official 240: ``--protocol dlb_paper_cifar`` gives
    the paper's length.

    ``milestones`` are epochs for the ``multistep`` schedule; empty means the
    official schedule scaled to the run (:func:`default_milestones`).
    ``protocol`` names the protocol file the values came from, if any
    (``recipes/protocols/``); it is recorded, the values themselves are the
    other fields.
    """

    dataset: str = _field("fashion_mnist", flag="--dataset",
                          help="fashion_mnist, cifar10, cifar100, tiny_imagenet, imagefolder (with --data-root), "
                               "synthetic, ... (default: {default})")
    model: str = _field("cifar_resnet8", flag="--model",
                        help="an augbench CIFAR model or any timm model (default: the protocol's first backbone, "
                             "else {default})")
    method: str = _field("ce", flag="--method", help="a registered method, see `augbench methods` (default: {default})")
    method_args: dict[str, Any] = _field(flag="--method-arg", factory=dict, metavar="KEY=VALUE",
                                         help="a method argument, repeatable (for example temperature=4)")
    recipe: str = _field("baseline", flag="--recipe", help="augmentation recipe name or YAML path (default: {default})")
    epochs: int = _field(5, flag="--epochs", minimum=1,
                         help="(default: {default}, a short CPU run; the official DLB code trains 240: "
                              "--protocol dlb_paper_cifar)")
    budget: str = _field("epochs", flag="--budget", choices=lambda: BUDGETS,
                         help="epochs: every method trains --epochs epochs; samples: every method gets the forward "
                              "samples CE would use in --epochs (two-view methods train half the epochs) "
                              "(default: {default})")
    batch_size: int = _field(64, flag="--batch-size", fixed=True, minimum=1, help="(default: {default}, " + _OFFICIAL + ")")
    lr: float = _field(0.05, flag="--lr", fixed=True, help="(default: {default}, " + _OFFICIAL + ")")
    momentum: float = _field(0.9, flag="--momentum", fixed=True,
                             help="SGD momentum, Nesterov (default: {default}, " + _OFFICIAL + ")")
    nesterov: bool = _field(True, flag=None)
    weight_decay: float = _field(5e-4, flag="--weight-decay", fixed=True, help="(default: {default}, " + _OFFICIAL + ")")
    schedule: str = _field("multistep", flag="--schedule", fixed=True, choices=lambda: tuple(SCHEDULES),
                           help="(default: {default})")
    milestones: list[int] = _field(flag="--milestones", fixed=True, factory=list, minimum=1,
                                   help="epochs at which multistep decays the rate (default: "
                                        + "/".join(f"{100 * f:g}%%" for f in DEFAULT_MILESTONE_FRACTIONS)
                                        + " of --epochs, rounded to distinct epochs: the official DLB code's "
                                          "150/180/210 of 240 scaled to the run, Meta-knowledge-Lab/DLB base.py)")
    gamma: float = _field(0.1, flag="--gamma", fixed=True,
                          help="multistep decay factor (default: {default}, " + _OFFICIAL + ")")
    warmup_epochs: float = _field(0.0, flag="--warmup-epochs", fixed=True, help="(default: {default})")
    seed: int = _field(0, flag="--seed", help="(default: {default})")
    val_fraction: float = _field(0.1, flag="--val-fraction", help="(default: {default})")
    train_subset: int | None = _field(None, flag="--train-subset", minimum=1,
                                      help="train on a stratified subset of N samples")
    image_size: int | None = _field(None, flag="--image-size", minimum=1, metavar="N",
                                    help="bring every image to NxN: shorter side scaled to N, centre crop (default: "
                                         "the data set's native size)")
    label_noise: str | None = _field(None, flag="--label-noise", metavar="sym:R|asym:R",
                                     help="training-label noise at rate R")
    channels_last: bool = _field(True, flag="--channels-last", fixed=True, help="(default: {default})")
    #: bfloat16 autocast: true, false, or "auto" (on where the device runs it natively; the record says which).
    bf16: bool | str = _field(False, flag="--bf16", fixed=True, accepted="true, false or auto", value="auto",
                              help="bfloat16 autocast; --bf16 auto: only where the device runs bfloat16 natively "
                                   "(the record says whether it was used)")
    eval_batch_size: int = _field(1000, flag=None)
    protocol: str | None = _field(None, flag="--protocol", metavar="NAME|PATH",
                                  help="named training settings from recipes/protocols/ (e.g. dlb_paper_cifar, "
                                       "fmnist_map); flags given here override them")
    #: BatchNorm statistics over every rank's shard (DDP, CUDA); per rank when false.
    sync_bn: bool = _field(False, flag="--sync-bn",
                           help="under torchrun (DDP): BatchNorm statistics over all ranks' shards, CUDA only "
                                "(default: per rank)")

    @classmethod
    def flag(cls, name: str) -> str:
        """The ``augbench train`` flag of field ``name`` (``--eval-batch-size`` style for one without a flag)."""
        return FIELD_FLAGS.get(name) or "--" + name.replace("_", "-")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> RunConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise UsageError(f"{source}: unknown field '{unknown[0]}' (accepted: {', '.join(sorted(names))})")
        return cls(**data)

    def hyperparameters(self) -> dict[str, Any]:
        keys = ("lr", "batch_size", "momentum", "nesterov", "weight_decay", "schedule", "milestones", "gamma",
                "warmup_epochs", "channels_last", "bf16")
        return {k: getattr(self, k) for k in keys}

    def validate(self) -> None:
        """Checks values that need no data or registry; raises UsageError naming the flag."""
        checks = [
            (self.epochs >= 1, "epochs", "an integer >= 1"),
            (self.batch_size >= 2, "batch_size", "an integer >= 2"),
            (self.lr > 0, "lr", "a number > 0"),
            (0 <= self.momentum < 1, "momentum", "a number in [0, 1)"),
            (self.weight_decay >= 0, "weight_decay", "a number >= 0"),
            (self.schedule in SCHEDULES, "schedule", " or ".join(SCHEDULES)),
            (self.budget in BUDGETS, "budget", " or ".join(BUDGETS)),
            (0 < self.gamma <= 1, "gamma", "a number in (0, 1]"),
            (0 <= self.warmup_epochs < self.epochs, "warmup_epochs", "a number in [0, --epochs)"),
            (0 <= self.val_fraction < 1, "val_fraction", "a number in [0, 1)"),
            (self.train_subset is None or self.train_subset >= 1, "train_subset", "an integer >= 1"),
            (self.image_size is None or 8 <= self.image_size <= 4096, "image_size",
             "an integer in [8, 4096], or none for the data set's native size"),
            (self.eval_batch_size >= 1, "eval_batch_size", "an integer >= 1"),
            (isinstance(self.bf16, bool) or self.bf16 == "auto", "bf16", field_accepted("bf16")),
            (all(0 < m < self.epochs for m in self.milestones), "milestones",
             "epoch numbers in [1, --epochs - 1] (a decay at or after the last epoch never takes effect)"),
        ]
        for ok, name, accepted in checks:
            if not ok:
                raise FieldError(name, f"{self.flag(name)}: got {getattr(self, name)!r}; accepted: {accepted}")

    def resolved_milestones(self) -> list[int]:
        if self.milestones:
            return sorted(self.milestones)
        return default_milestones(self.epochs)

    def with_milestones_written(self) -> RunConfig:
        """This configuration with empty multistep milestones written out, so a record shows where the rate fell."""
        if self.schedule != "multistep" or self.milestones:
            return self
        return dataclasses.replace(self, milestones=self.resolved_milestones())


#: Field name -> its ``augbench train`` flag, for every RunConfig field that has one.
FIELD_FLAGS: dict[str, str] = {f.name: f.metadata["flag"] for f in dataclasses.fields(RunConfig) if f.metadata["flag"]}
#: Fields an experiment file may set for every cell under ``fixed``, in declaration order.
FIXED_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RunConfig) if f.metadata["fixed"])


def default_milestones(epochs: int) -> list[int]:
    """The official DLB decay epochs scaled to ``epochs``: 62.5%, 75% and 87.5%, rounded half up.

    240 epochs give exactly the official 150, 180 and 210. In a short run two
    fractions can round to the same epoch, or to epoch 0 or the last epoch
    (where a decay would never take effect): such milestones are merged or
    dropped, so the list is strictly increasing, every entry in
    ``[1, epochs - 1]`` (10 epochs: 6, 8, 9; 5 epochs: 3, 4; 1 epoch: none).
    """
    rounded = {math.floor(epochs * fraction + 0.5) for fraction in DEFAULT_MILESTONE_FRACTIONS}
    return sorted(m for m in rounded if 0 < m < epochs)


# -- the type of a field's value, as files give it (checked with augbench.schema) ----------------

def field_hint(name: str) -> Any:
    """RunConfig field ``name``'s type annotation, evaluated (``bool | str``, ``list[int]``, ...)."""
    return schema.hints(RunConfig)[name]


def field_accepted(name: str) -> str:
    """What RunConfig field ``name`` accepts, in words (for error messages)."""
    return schema.accepted(RunConfig, name)


def config_section(name: str, fields: tuple[str, ...], doc: str, unknown_hint: str = "") -> type:
    """A declared section (``augbench.schema``) of some RunConfig fields, each with its own type and words.

    An experiment's ``fixed`` and a protocol's ``settings`` are such sections; a field left out reads as None
    (see :func:`given`). ``unknown_hint`` tells a file that names another field where that one belongs.
    """
    section = dataclasses.make_dataclass(
        name, [(f, field_hint(f), schema.declared(None, accepted=field_accepted(f))) for f in fields], frozen=True)
    section.__doc__ = doc
    section.unknown_hint = unknown_hint
    return section


def given(section: Any, data: dict[str, Any] | None) -> dict[str, Any]:
    """The fields of a read ``config_section`` that the file gave (``data``: the mapping it was read from)."""
    return {key: getattr(section, key) for key in data or {}}
