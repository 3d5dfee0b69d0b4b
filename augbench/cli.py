"""The ``augbench`` command line; the only place that parses arguments.

Each subcommand is a pair: ``_add_<name>(subparsers)`` declares its flags and
``_run_<name>(args)`` does the work. ``COMMANDS`` lists them. Bad input
raises UsageError, which ends the program with status 2 and one clear line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from augbench.config import RunConfig, field_hint
from augbench.errors import UsageError
from augbench.plugins import load_plugins
from augbench.protocol import list_protocols, load_protocol, resolve_config
from augbench.run_folder import write_json_atomic


def _word(flag: str, word: str):
    """The one value a boolean flag may also take (``--bf16 auto``); the flag alone means on."""
    def parse(text: str) -> str:
        if text != word:
            raise argparse.ArgumentTypeError(f"got {text!r}; accepted: {word}, or {flag} alone for on")
        return text

    return parse


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

def _option(spec: dataclasses.Field, default: Any) -> dict[str, Any]:
    """argparse keywords for RunConfig field ``spec``, from its type and its declaration (``config._field``)."""
    meta, flag = spec.metadata, spec.metadata["flag"]
    hint = field_hint(spec.name)
    shown = f"{default:g}" if isinstance(default, float) else str(default)
    option: dict[str, Any] = {"default": None, "help": meta["help"].replace("{default}", shown)}
    if meta["metavar"]:
        option["metavar"] = meta["metavar"]
    if meta["choices"]:
        option["choices"] = meta["choices"]()
    kinds = {a for a in typing.get_args(hint) if a is not type(None)} or {hint}
    if hint == dict[str, Any]:  # KEY=VALUE pairs, repeatable; parsed by parse_key_values
        return {**option, "action": "append", "default": []}
    if bool in kinds and meta["value"]:  # --bf16 (on) or --bf16 auto
        return {**option, "nargs": "?", "const": True, "type": _word(flag, meta["value"]),
                "metavar": meta["value"]}
    if bool in kinds:
        return {**option, "action": argparse.BooleanOptionalAction if default else "store_true"}
    integer = _positive_int(flag) if meta["minimum"] == 1 else int
    if typing.get_origin(hint) is list:
        return {**option, "nargs": "+", "type": integer}
    if int in kinds:
        return {**option, "type": integer}
    if float in kinds:
        return {**option, "type": _number(flag)}
    return option


def _add_train(sub) -> None:
    d = RunConfig()
    p = sub.add_parser("train", help="train one model with one method and write its result record",
                       description="Train one backbone with one method on one data set; writes config.json, "
                                   "metrics.jsonl, checkpoint.pt and result.json into --out. Rerunning the same "
                                   "command resumes.")
    # Every RunConfig field with a flag, built from its declaration (augbench.config). Training settings
    # default to None so that a flag given can be told from one left out: left out, the value comes from
    # --protocol, else from RunConfig (shown in the help).
    for spec in dataclasses.fields(RunConfig):
        if spec.metadata["flag"]:
            p.add_argument(spec.metadata["flag"], **_option(spec, getattr(d, spec.name)))
    p.add_argument("--out", default=None, help="run folder (default: runs/DATASET_MODEL_RECIPE_METHOD_sSEED)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (an error if there is none)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--data-root", default=None, help="folder with the data set files")
    p.add_argument("--download", action="store_true",
                   help="download CIFAR or Tiny-ImageNet if missing (nothing else downloads)")
    p.add_argument("--dist-timeout", type=_number("--dist-timeout"), default=300.0, metavar="SECONDS",
                   help="under torchrun: how long a rank waits for the rendezvous and for the other ranks "
                        "(default: 300)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _run_train(args) -> int:
    # lazy: each command loads only what it runs, so `augbench --help` stays quick
    from augbench.engine import train

    if args.workers < 0:
        raise UsageError(f"--workers: got {args.workers}; accepted: an integer >= 0")
    # Every RunConfig field with a flag of the same name; None (left out) leaves the protocol's or default value.
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig)
             if hasattr(args, f.name) and f.name != "protocol"}
    given["method_args"] = parse_key_values(args.method_arg, "--method-arg") or None
    config = resolve_config(given, protocol=args.protocol)
    recipe_name = Path(config.recipe).stem  # a recipe given as a path is named by its file
    out = args.out or f"runs/{config.dataset}_{config.model}_{recipe_name}_{config.method}_s{config.seed}"
    record = train(config, out, resume=args.resume, data_root=args.data_root, download=args.download,
                   device=args.device, num_workers=args.workers, progress=not args.no_progress,
                   command=["augbench", *sys.argv[1:]], dist_timeout=args.dist_timeout)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for the run
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
    # lazy: each command loads only what it runs, so `augbench --help` stays quick
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
    # lazy: each command loads only what it runs, so `augbench --help` stays quick
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
    # lazy: each command loads only what it runs, so `augbench --help` stays quick
    from augbench.data import list_datasets

    print("\n".join(list_datasets()))
    return 0


def _add_protocols(sub) -> None:
    sub.add_parser("protocols", help="list the training protocols (recipes/protocols/) with their settings and source")


def _run_protocols(args) -> int:
    for name, path in list_protocols().items():
        protocol = load_protocol(str(path))
        settings = ", ".join(f"{k}={v}" for k, v in protocol.settings.items())
        print(f"{name}  [{path}]\n  settings: {settings}\n  backbones: {', '.join(protocol.backbones) or '-'}\n"
              f"  source: {protocol.source}")
    return 0


def _file_schemas() -> dict[str, Any]:
    """What ``augbench schema`` can print: each kind of file, and a run's configuration, as declared."""
    # lazy: each command loads only what it runs, so `augbench --help` stays quick
    from augbench.augment.recipe import RecipeFile
    from augbench.protocol import ProtocolFile
    from augbench.tune.schema import ExperimentFile

    return {"experiment": ExperimentFile, "recipe": RecipeFile, "protocol": ProtocolFile, "run": RunConfig}


SCHEMA_KINDS = ("experiment", "recipe", "protocol", "run")


def _add_schema(sub) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of an experiment, recipe or protocol file (for "
                                      "editors), or of a run's configuration",
                       description="The declarations augbench reads these files with, as JSON Schema (draft "
                                   "2020-12). Names of registered things (methods, data sets, mix policies) are "
                                   "listed as they are now, plugins included. Ranges and rules across fields are "
                                   "in the descriptions; augbench checks them when it reads a file.")
    p.add_argument("kind", choices=SCHEMA_KINDS)
    p.add_argument("--out", type=Path, default=None, help="write it to this file (default: standard output)")


def _run_schema(args) -> int:
    from augbench.schema import json_schema  # lazy: as above

    declared = _file_schemas()[args.kind]
    doc = (declared.__doc__ or "").strip().split("\n")[0]
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": f"augbench {args.kind}",
              "description": doc, **json_schema(declared)}
    if args.out is None:
        sys.stdout.write(json.dumps(schema, indent=2, default=str) + "\n")
    else:
        write_json_atomic(args.out, schema)
    return 0


# -- tune, worker, status --------------------------------------------------------------------------

def _add_experiment_args(p, storage_help: str) -> None:
    p.add_argument("experiment", metavar="EXPERIMENT.yaml", help="experiment file (see recipes/experiments/)")
    p.add_argument("--out", default=None, help="output folder (default: runs/NAME, or runs/GROUP/NAME for an experiment "
                                                        "with a group)")
    p.add_argument("--storage", default=None, metavar="URL|FILE", help=storage_help)


def _add_run_args(p) -> None:
    p.add_argument("--no-wandb", action="store_true", help="no W&B runs (default: one offline W&B run per trial)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--data-root", default=None, help="folder with the data set files")


_STORAGE_HELP = ("Optuna storage: postgresql://USER:PASSWORD@HOST:PORT/DB for workers on many machines, or a "
                 "journal file (default: OUT/optuna.journal); $AUGBENCH_STORAGE keeps a password off the "
                 "command line")


def _add_tune(sub) -> None:
    p = sub.add_parser("tune", help="tune every cell of an experiment on validation data, then run its final seeds",
                       description="Search: one Optuna study per cell, trials maximise validation accuracy, a "
                                   "pruner stops weak trials. Final: each cell's best parameters retrained with "
                                   "every final seed (what the leaderboard uses). Rerunning resumes.")
    _add_experiment_args(p, _STORAGE_HELP)
    p.add_argument("--workers", type=_positive_int("--workers"), default=1,
                   help="local worker processes, each training with the cores shared out (fewer threads if "
                        "$OMP_NUM_THREADS asks for fewer; default: 1, in this process); with --dry-run, the "
                        "estimate is for that many workers")
    _add_run_args(p)
    p.add_argument("--dry-run", action="store_true",
                   help="run nothing: print the number of runs, the forward samples and the wall time estimated "
                        "from a few timed training steps on this machine; writes nothing")
    p.add_argument("--throughput", type=_number("--throughput"), default=None, metavar="IMG_PER_S",
                   help="with --dry-run: also estimate for a device that trains this many forward samples/s")
    p.add_argument("--save", action="store_true",
                   help="with --dry-run: keep the estimate in OUT/estimate.json, where the leaderboard shows it")


def _run_tune(args) -> int:
    # lazy: each command loads only what it runs, so `augbench --help` stays quick
    from augbench.tune.runner import tune

    if args.dry_run:
        # lazy: each command loads only what it runs, so `augbench --help` stays quick
        from augbench.tune.estimate import dry_run

        return dry_run(args.experiment, out=args.out, data_root=args.data_root, device=args.device,
                       throughput=args.throughput, save=args.save, workers=args.workers)
    for flag, given in (("--throughput", args.throughput is not None), ("--save", args.save)):
        if given:
            raise UsageError(f"{flag}: only with --dry-run (accepted: augbench tune EXPERIMENT --dry-run {flag} ...)")
    return tune(args.experiment, out=args.out, storage=args.storage, workers=args.workers,
                use_wandb=not args.no_wandb, device=args.device, data_root=args.data_root)


def _add_worker(sub) -> None:
    p = sub.add_parser("worker", help="join an experiment's storage and run its trials until none is left",
                       description="Start on any number of machines with the same experiment file and "
                                   "--storage; every trial runs exactly once across them.")
    _add_experiment_args(p, _STORAGE_HELP)
    _add_run_args(p)
    p.add_argument("--name", default=None, help="a label for this worker's log lines")


def _run_worker(args) -> int:
    # lazy: each command loads only what it runs, so `augbench --help` stays quick
    from augbench.tune.runner import work

    return work(args.experiment, out=args.out, storage=args.storage, use_wandb=not args.no_wandb,
                device=args.device, data_root=args.data_root, name=args.name)


def _add_status(sub) -> None:
    p = sub.add_parser("status", help="per cell: search and final runs done, running, failed (why) and left")
    _add_experiment_args(p, _STORAGE_HELP)


def _run_status(args) -> int:
    # lazy: each command loads only what it runs, so `augbench --help` stays quick
    from augbench.tune.runner import status

    return status(args.experiment, out=args.out, storage=args.storage)


# -- leaderboard -----------------------------------------------------------------------------------

def _add_leaderboard(sub) -> None:
    # lazy: each command loads only what it runs, so `augbench --help` stays quick
    from augbench.leaderboard import METRICS

    p = sub.add_parser("leaderboard", help="build the leaderboard from result records")
    actions = p.add_subparsers(dest="leaderboard_action", required=True, metavar="ACTION")
    b = actions.add_parser("build", help="write README.md, index.html, results.csv, entries/ and records/ from records",
                           description="Aggregates final result records (mean over seeds, 95% Student-t "
                                       "intervals, gains over CE paired by seed) into --out.")
    b.add_argument("--from", dest="source", required=True, metavar="SOURCE", action="append",
                   help="an experiment or run folder (runs/NAME), a published leaderboard's records folder "
                        "(leaderboard/records, or one experiment's leaderboard/records/NAME), an Optuna storage "
                        "URL or journal file, or wandb:ENTITY/PROJECT (online); repeat it to pool several (the "
                        "finished parts of a split experiment, or a published map and a new part, say)")
    b.add_argument("--out", default="leaderboard", help="leaderboard folder (default: %(default)s)")
    b.add_argument("--notes", default=None, metavar="FILE",
                   help="a Markdown file shown under the pages' introduction (how the protocol was chosen, say)")
    b.add_argument("--metric", choices=METRICS, default="test_acc",
                   help="; ".join(f"{m.name}: {m.label}" for m in METRICS.values())
                        + " (default: %(default)s; index.html switches between all of them)")


def _run_leaderboard(args) -> int:
    # lazy: each command loads only what it runs, so `augbench --help` stays quick
    from augbench.leaderboard import build

    command = ["augbench", "leaderboard", "build", *[a for spec in args.source for a in ("--from", spec)],
               "--out", args.out]
    if args.metric != "test_acc":
        command += ["--metric", args.metric]
    if args.notes:
        command += ["--notes", args.notes]
    result = build(args.source, args.out, metric=args.metric, command=command, notes=args.notes)
    cells = result.board.cells
    incomplete = sum(not c.complete for c in cells)
    print(f"leaderboard: {len(cells)} cells in {len(result.board.tables)} table(s) from "
          f"{len(result.board.loaded.records)} runs ({incomplete} incomplete) -> {result.out}/README.md, "
          f"index.html, results.csv, {len(cells)} entries")
    return 0


# -- recipes ---------------------------------------------------------------------------------------

def _add_recipes(sub) -> None:
    p = sub.add_parser("recipes", help="list the augmentation recipes, or draw what one does to real samples")
    actions = p.add_subparsers(dest="recipes_action", required=True, metavar="ACTION")
    actions.add_parser("list", help="every recipe in recipes/augment: operations, mixing, DLB mix policy, paper")
    show = actions.add_parser("show", help="draw original, view 0, view 1 and the mixed pair for real samples",
                              description="Writes a PNG grid: one row per sample (one per class), columns the "
                                          "original, two independently drawn views and, when the recipe mixes, "
                                          "view 0 mixed and view 1 mixed as DLB mixes its replayed batch.")
    show.add_argument("recipe", metavar="NAME|PATH", help="a recipe name or the path of a recipe YAML file")
    show.add_argument("--dataset", default="fashion_mnist",
                      help="data set to draw samples from; the recipe's per_dataset settings for it apply, and its "
                           "resolved settings are printed (default: %(default)s)")
    show.add_argument("--out", required=True, help="PNG file to write")
    show.add_argument("--samples", type=_positive_int("--samples"), default=6, help="rows (default: %(default)s)")
    show.add_argument("--seed", type=int, default=0, help="seed of the samples and the augmentation (default: 0)")
    show.add_argument("--data-root", default=None, help="folder with the data set files")


def recipe_mean_text(mean) -> str:
    """A data set's per-channel mean as the uint8 fill ``fill: mean`` becomes."""
    return "/".join(str(int(round(255 * m))) for m in mean)


def _run_recipes(args) -> int:
    # lazy: each command loads only what it runs, so `augbench --help` stays quick
    from augbench.augment.recipe import list_recipes, load_recipe

    if args.recipes_action == "list":
        invalid = 0
        for name, path in list_recipes().items():
            try:
                recipe = load_recipe(str(path))
            except UsageError as err:
                print(f"augbench recipes list: error: {err}", file=sys.stderr)
                invalid += 1
                continue
            print(f"{name:22s} {recipe.summary()}  [{path}]\n{'':22s} {recipe.paper}")
        return 2 if invalid else 0

    # lazy: only drawing a preview needs matplotlib and the data sets
    from augbench.augment.preview import pick_samples, recipe_grid
    from augbench.data import load_dataset

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out {args.out}: accepted: a file name ending in .png")
    if not out.parent.is_dir():
        raise UsageError(f"--out {args.out}: folder {out.parent} does not exist; accepted: a path in an existing folder")
    recipe = load_recipe(args.recipe, dataset=args.dataset)
    ds = load_dataset(args.dataset, data_root=args.data_root)
    recipe = recipe.prepared(ds.num_classes, tuple(ds.train_images.shape[1:]), mean=ds.mean)
    print(f"recipe {recipe.name} resolved for {ds.name} (fill 'mean' = {recipe_mean_text(ds.mean)}):")
    for i, (name, op_args) in enumerate(recipe.pipeline.spec):
        print(f"  ops[{i}] {name}: " + ", ".join(f"{k}={v}" for k, v in op_args.items()))
    if recipe.spec.get("mix"):
        print("  mix: " + ", ".join(f"{k}={v}" for k, v in recipe.spec["mix"].items()))
    chosen = pick_samples(ds.train_labels, args.samples, args.seed)
    recipe_grid(recipe, ds.train_images[chosen], ds.train_labels[chosen], ds.class_names, out, seed=args.seed)
    print(f"recipe {recipe.name} on {ds.name}: {len(chosen)} samples -> {out}")
    return 0


# -- bench -----------------------------------------------------------------------------------------

def _add_bench(sub) -> None:
    d = RunConfig()
    p = sub.add_parser("bench", help="measure model-only, data-path and end-to-end training throughput",
                       description="Measures, side by side in one process: the model's own train-step "
                                   "throughput on inputs already on the device; each recipe's data path (per-sample "
                                   "against batched); the end-to-end training throughput of each recipe x method "
                                   "and its ratio to the model's; DLB's step against a CE step on a batch of 2n.")
    p.add_argument("--dataset", default=d.dataset, help="(default: %(default)s)")
    p.add_argument("--model", default=d.model, help="(default: %(default)s)")
    p.add_argument("--batch-size", type=_positive_int("--batch-size"), default=d.batch_size,
                   help="(default: %(default)s)")
    # None: the bench's own lists (augbench.engine.bench), which this parser does not load
    p.add_argument("--recipes", nargs="+", default=None, metavar="RECIPE")
    p.add_argument("--methods", nargs="+", default=None, metavar="METHOD")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast and bf16 normalisation")
    p.add_argument("--workers", type=int, default=2,
                   help="loader worker processes for recipes with sample ops, and on a CPU for the batched "
                        "policies (default: %(default)s)")
    p.add_argument("--threads", type=_positive_int("--threads"), default=None,
                   help="the model's CPU threads (default: torch's); on a CPU, fewer threads than cores leave a "
                        "core to the loader workers, as a GPU leaves the host's")
    p.add_argument("--steps", type=_positive_int("--steps"), default=30, help="timed steps per measurement")
    p.add_argument("--data-root", default=None, help="folder with the data set files")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _run_bench(args) -> int:
    # lazy: each command loads only what it runs, so `augbench --help` stays quick
    from augbench.engine.bench import DEFAULT_METHODS, DEFAULT_RECIPES, format_table, run_bench

    if args.workers < 0:
        raise UsageError(f"--workers: got {args.workers}; accepted: an integer >= 0")
    config = RunConfig(dataset=args.dataset, model=args.model, batch_size=args.batch_size, bf16=args.bf16)
    result = run_bench(config, args.recipes or list(DEFAULT_RECIPES), args.methods or list(DEFAULT_METHODS), device=args.device, workers=args.workers,
                       threads=args.threads, steps=args.steps, data_root=args.data_root,
                       log=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


COMMANDS: dict[str, tuple[Callable, Callable]] = {
    "train": (_add_train, _run_train),
    "methods": (_add_methods, _run_methods),
    "models": (_add_models, _run_models),
    "datasets": (_add_datasets, _run_datasets),
    "protocols": (_add_protocols, _run_protocols),
    "schema": (_add_schema, _run_schema),
    "recipes": (_add_recipes, _run_recipes),
    "leaderboard": (_add_leaderboard, _run_leaderboard),
    "tune": (_add_tune, _run_tune),
    "worker": (_add_worker, _run_worker),
    "status": (_add_status, _run_status),
    "bench": (_add_bench, _run_bench),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="augbench", description="Augmentations x self-distillation benchmark.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        load_plugins()  # before the flags: a plugin's methods, recipes and schedules are choices there too
    except UsageError as err:
        print(f"augbench: error: {err}", file=sys.stderr)
        return 2
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
