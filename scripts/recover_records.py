"""Recovers records/ for a leaderboard published before its builds kept every run's record.

    python scripts/recover_records.py [leaderboard] [--commit SHA]

Such a leaderboard can only be rebuilt from its experiment folders; once those are gone, this script writes
what its own files still hold into LEADERBOARD/records/, in the layout ``augbench leaderboard build`` writes
(``augbench.leaderboard.render_records``), so that ``--from LEADERBOARD/records`` rebuilds it and can extend it:

- each final run's record, from its cell's entry (``entries/*.json``): the run's own fields (seed, status,
  accuracies, NLL, ECE, forward samples, times, device, commit, the command that reproduces it) and the fields
  its cell's provenance holds once for all its runs (hyperparameters, method arguments, tuned values, sizes,
  label noise, versions, planned seeds). Its slot (and, in a cell pooled from several experiments, its
  experiment and cell) comes from the path it was read from.
  Fields the entries never kept (the full run configuration, the recipe's operations, the data split's
  indices) are absent; each record says where it was recovered from (``recovered_from``);
- each experiment's resolved definition, from the README's "Experiment definition" blocks;
- each experiment's cost line, from the README's cost section, verbatim (``published_cost`` in its
  estimate.json): the saved estimate and the search trials' times behind it were not published, so the line
  is shown as it was, not recomputed.

A build from the recovered records gives the same cells, intervals, gains and interactions; the script checks
that against the published results.csv before it writes anything, and stops (exit status 1) if any number
differs.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from augbench.leaderboard.build import build
from augbench.leaderboard.render_entries import RUN_FIELDS
from augbench.leaderboard.render_records import RECORDS_DIR, records_files
from augbench.leaderboard.sources import Loaded

# Cell provenance fields that hold one value per run, listed once when every run shares it (``Cell.provenance``).
SHARED = ("hyperparameters", "method_args", "tuned_params", "versions", "label_noise")


class Unrecoverable(Exception):
    pass


def _per_run(values: list[Any], runs: int, what: str, where: str) -> list[Any]:
    """One value per run (in seed order) from a provenance list: its only value for all, or, when it holds as many
    values as there are runs, each run's own (the provenance lists the runs' distinct values in seed order)."""
    if len(values) == 1:
        return values * runs
    if len(values) == runs:
        return list(values)
    raise Unrecoverable(f"{where}: {len(values)} different {what} for {runs} runs in the provenance; the entry "
                        f"does not say which run used which")


def run_records(entry: dict[str, Any], where: str, recovered_from: str) -> list[dict[str, Any]]:
    """The final runs' records of one cell's entry."""
    prov = entry["provenance"]
    n = len(entry["runs"])
    per_run = {name: _per_run(prov[name], n, name, where) for name in SHARED if prov.get(name)}
    sizes = _per_run(prov["sizes"], n, "sizes", where)
    records = []
    for i, run in enumerate(entry["runs"]):
        parts = Path(run["origin"]).parts
        if "final" not in parts or parts[-1] != "result.json":
            raise Unrecoverable(f"{where}: run of seed {run['seed']} was read from {run['origin']}, not from "
                                f"an experiment folder's final/CELL/SLOT/result.json")
        at = parts.index("final")
        # A cell pooled from several experiments (extra seeds in a later part) says which in each run's path.
        experiment = prov["experiments"][0] if len(prov["experiments"]) == 1 else parts[at - 1]
        cell = prov["cells"][0] if len(prov["cells"]) == 1 else parts[at + 1]
        record = {
            "experiment": experiment, "group": entry["experiment"], "cell": cell, "phase": "final",
            "slot": parts[at + 2], "dataset": entry["dataset"], "model": entry["model"], "recipe": entry["recipe"],
            "method": entry["method"], "seed": run["seed"], "epochs": entry["epochs"], "budget": entry["budget"],
            **sizes[i], **{name: values[i] for name, values in per_run.items()}, "planned_seeds": entry["planned_seeds"],
            **{k: run[k] for k in RUN_FIELDS if k in run},
            "reproduce": run.get("reproduce"),
            "recovered_from": f"{recovered_from}, run of seed {run['seed']} (read from {run['origin']})",
        }
        records.append(record)
    return records


def definitions(readme: str) -> dict[str, dict[str, Any]]:
    """Experiment name -> resolved definition, from the README's "Experiment definition" blocks."""
    found = {}
    pattern = r"<summary>Experiment definition: (\S+) \(as resolved by augbench tune\)</summary>\s*(`{3,})yaml\n(.*?)\n\2"
    for name, _, text in re.findall(pattern, readme, flags=re.S):
        found[name] = yaml.safe_load(text)
    return found


def cost_lines(readme: str) -> dict[str, str]:
    """Experiment name -> its published cost line, from the README's cost section."""
    section = readme.split("## Cost: estimated and actual wall time", 1)
    if len(section) < 2:
        return {}
    lines = {}
    for line in section[1].split("\n## ", 1)[0].splitlines():
        if match := re.match(r"- (\S+?): (.*)$", line):
            lines[match.group(1)] = match.group(2)
    return lines


def recover(board: Path, commit: str) -> Loaded:
    """The records, definitions and published cost lines that board's entries and README still hold."""
    readme = (board / "README.md").read_text(encoding="utf-8")
    loaded = Loaded(f"{board}/entries", "recovered")
    records = []
    for path in sorted((board / "entries").glob("*.json")):
        entry = json.loads(path.read_text(encoding="utf-8"))
        records += run_records(entry, str(path), f"{board.name}/entries/{path.name} at commit {commit}")
    for record in sorted(records, key=lambda r: (r["experiment"], r["cell"], r["seed"])):
        loaded.add(record, record["recovered_from"], plain_allowed=False)
    names = {record["experiment"] for record in records}
    loaded.experiments = {name: d for name, d in definitions(readme).items() if name in names}
    loaded.estimates = {name: {"experiment": name, "published_cost": line,
                               "recovered_from": f"{board.name}/README.md at commit {commit}"}
                        for name, line in cost_lines(readme).items() if name in names}
    return loaded


def compare(published: Path, rebuilt: Path) -> list[str]:
    """Rows of results.csv that differ (besides the build's source), as readable lines."""
    def rows(path):
        with open(path, newline="", encoding="utf-8") as f:
            return {tuple(r[k] for k in ("kind", "experiment", "label_noise", "budget", "model", "recipe", "method",
                                          "metric")): r for r in csv.DictReader(f)}
    old, new = rows(published), rows(rebuilt)
    problems = [f"only published: {key}" for key in old.keys() - new.keys()]
    problems += [f"only rebuilt: {key}" for key in new.keys() - old.keys()]
    for key in old.keys() & new.keys():
        problems += [f"{key} {field}: published {old[key][field]!r}, rebuilt {new[key][field]!r}"
                     for field in old[key] if old[key][field] != new[key].get(field)]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("board", nargs="?", default="leaderboard", help="the leaderboard folder (default: %(default)s)")
    parser.add_argument("--commit", default=None,
                        help="the commit the leaderboard was published at (default: git's HEAD)")
    args = parser.parse_args(argv)
    board = Path(args.board)
    if not (board / "entries").is_dir() or not (board / "README.md").is_file():
        print(f"recover_records: {board} is not a leaderboard folder (entries/ and README.md)", file=sys.stderr)
        return 2
    if (board / RECORDS_DIR).exists():
        print(f"recover_records: {board / RECORDS_DIR} exists already; nothing to recover", file=sys.stderr)
        return 2
    commit = args.commit or subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                           text=True).stdout.strip() or "unknown"
    try:
        loaded = recover(board, commit)
    except Unrecoverable as err:
        print(f"recover_records: {err}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / RECORDS_DIR
        for name, text in records_files(loaded).items():
            (staged / name).parent.mkdir(parents=True, exist_ok=True)
            (staged / name).write_text(text, encoding="utf-8")
        build(str(staged), Path(tmp) / "rebuilt")
        problems = compare(board / "results.csv", Path(tmp) / "rebuilt" / "results.csv")
        if problems:
            print(f"recover_records: a build from the recovered records differs from {board}/results.csv in "
                  f"{len(problems)} place(s):", *problems[:20], sep="\n  ", file=sys.stderr)
            return 1
        shutil.copytree(staged, board / RECORDS_DIR)
    experiments = len({r["experiment"] for r in loaded.records})
    print(f"recovered {len(loaded.records)} final runs' records of {experiments} experiments into "
          f"{board / RECORDS_DIR}; a build from them reproduces {board}/results.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
