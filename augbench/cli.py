"""The ``augbench`` command line; the only place that parses arguments.

Each subcommand is a pair: ``_add_<name>(subparsers)`` declares its flags and
``_run_<name>(args)`` does the work. ``COMMANDS`` lists them. Bad input
raises UsageError, which ends the program with status 2 and one clear line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from augbench.errors import UsageError


def _positive_int(flag: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} expects an integer, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag} expects an integer >= 1, got {value}")
        return value

    return parse


def _number(flag: str):
    def parse(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} expects a number, got {text!r}") from None

    return parse


def parse_key_values(items: list[str], flag: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a missing ``=`` is a UsageError naming ``flag``."""
    result = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} {item!r}: expected KEY=VALUE, for example {flag} temperature=4")
        result[key.strip()] = value.strip()
    return result


# -- train -----------------------------------------------------------------------------------------

def _add_train(sub) -> None:
    from augbench.config import BUDGETS, SCHEDULES, RunConfig

    d = RunConfig()
    p = sub.add_parser("train", help="train one model with one method and write its result record",
                       description="Train one backbone with one method on one data set; writes config.json, "
                                   "metrics.jsonl, checkpoint.pt and result.json into --out. Rerunning the same "
                                   "command resumes.")
    p.add_argument("--dataset", default=d.dataset, help="fashion_mnist, cifar10, cifar100, synthetic, ... "
                                                        "(default: %(default)s)")
    p.add_argument("--model", default=d.model, help="an augbench CIFAR model or any timm model (default: %(default)s)")
    p.add_argument("--method", default=d.method, help="a registered method, see `augbench methods` (default: ce)")
    p.add_argument("--method-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="a method argument, repeatable (for example temperature=4)")
    p.add_argument("--recipe", default=d.recipe, help="augmentation recipe name or YAML path (default: %(default)s)")
    p.add_argument("--epochs", type=_positive_int("--epochs"), default=d.epochs)
    p.add_argument("--budget", choices=BUDGETS, default=d.budget,
                   help="epochs: every method trains --epochs epochs; samples: every method gets the forward "
                        "samples CE would use in --epochs (two-view methods train half the epochs)")
    p.add_argument("--batch-size", type=_positive_int("--batch-size"), default=d.batch_size)
    p.add_argument("--lr", type=_number("--lr"), default=d.lr)
    p.add_argument("--momentum", type=_number("--momentum"), default=d.momentum)
    p.add_argument("--weight-decay", type=_number("--weight-decay"), default=d.weight_decay)
    p.add_argument("--schedule", choices=SCHEDULES, default=d.schedule)
    p.add_argument("--milestones", type=_positive_int("--milestones"), nargs="+", default=[],
                   help="epochs at which multistep decays the rate (default: 50%% and 75%% of --epochs)")
    p.add_argument("--gamma", type=_number("--gamma"), default=d.gamma)
    p.add_argument("--warmup-epochs", type=_number("--warmup-epochs"), default=d.warmup_epochs)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--val-fraction", type=_number("--val-fraction"), default=d.val_fraction)
    p.add_argument("--train-subset", type=_positive_int("--train-subset"), default=None,
                   help="train on a stratified subset of N samples")
    p.add_argument("--label-noise", default=None, metavar="sym:R|asym:R", help="training-label noise at rate R")
    p.add_argument("--out", default=None, help="run folder (default: runs/DATASET_MODEL_RECIPE_METHOD_sSEED)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (an error if there is none)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--data-root", default=None, help="folder with the data set files")
    p.add_argument("--download", action="store_true", help="download CIFAR if missing (nothing else downloads)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=d.channels_last)
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _run_train(args) -> int:
    from augbench.config import RunConfig
    from augbench.engine import train

    if args.workers < 0:
        raise UsageError(f"--workers: got {args.workers}; accepted: an integer >= 0")
    config = RunConfig(
        dataset=args.dataset, model=args.model, method=args.method,
        method_args=parse_key_values(args.method_arg, "--method-arg"), recipe=args.recipe, epochs=args.epochs,
        budget=args.budget, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
        weight_decay=args.weight_decay, schedule=args.schedule, milestones=args.milestones, gamma=args.gamma,
        warmup_epochs=args.warmup_epochs, seed=args.seed, val_fraction=args.val_fraction,
        train_subset=args.train_subset, label_noise=args.label_noise, channels_last=args.channels_last,
        bf16=args.bf16,
    )
    out = args.out or f"runs/{args.dataset}_{args.model}_{args.recipe}_{args.method}_s{args.seed}"
    record = train(config, out, resume=args.resume, data_root=args.data_root, download=args.download,
                   device=args.device, num_workers=args.workers, progress=not args.no_progress,
                   command=["augbench", *sys.argv[1:]])
    _print_record(record, out)
    return 0 if record["status"] == "finished" else 1


def _print_record(record: dict[str, Any], out: str) -> None:
    def pct(value):
        return "n/a" if value is None else f"{value:.2f}%"

    print(f"{record['status']}: {record['method']} on {record['dataset']} / {record['model']} / {record['recipe']}"
          f" seed {record['seed']}: test {pct(record['test_acc'])} (at best val: {pct(record['test_acc_at_best_val'])}"
          f", best val {pct(record['best_val_acc'])}), {record['train_seconds']:.1f}s training -> {out}/result.json")
    if record.get("reason"):
        print(f"reason: {record['reason']}")


# -- listings --------------------------------------------------------------------------------------

def _add_methods(sub) -> None:
    sub.add_parser("methods", help="list the registered training methods and their arguments")


def _run_methods(args) -> int:
    from augbench.methods import METHODS

    for name in sorted(METHODS):
        cls = METHODS[name]
        doc = (cls.__module__ and sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
        arguments = ", ".join(f"{k}={v}" for k, v in cls.defaults.items()) or "-"
        print(f"{name:10s} views={cls.num_views}  args: {arguments}\n{'':10s} {doc[0] if doc else ''}")
    return 0


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list augbench's CIFAR-style models (any timm model name also works)")
    p.add_argument("--timm", metavar="PATTERN", default=None, help="also list timm models matching PATTERN")


def _run_models(args) -> int:
    import timm

    from augbench import models

    for name in models.list_models():
        marker = "  (default)" if name == models.DEFAULT_MODEL else ""
        print(f"{name}{marker}")
    if args.timm:
        for name in timm.list_models(args.timm):
            print(f"timm: {name}")
    return 0


def _add_datasets(sub) -> None:
    sub.add_parser("datasets", help="list the registered data sets")


def _run_datasets(args) -> int:
    from augbench.data import list_datasets

    print("\n".join(list_datasets()))
    return 0


COMMANDS: dict[str, tuple[Callable, Callable]] = {
    "train": (_add_train, _run_train),
    "methods": (_add_methods, _run_methods),
    "models": (_add_models, _run_models),
    "datasets": (_add_datasets, _run_datasets),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="augbench", description="Augmentations x self-distillation benchmark.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command][1](args)
    except UsageError as err:
        print(f"augbench {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
