"""leaderboard/records/: every result record the build read, so the leaderboard can be rebuilt from itself.

One folder per experiment, ``records/NAME/``, holding

- ``records.jsonl``: its final runs' records (the cells' runs), then its other records (search trials, whose
  times the cost section counts), one JSON object per line, as the source gave them;
- ``experiment.yaml``: the experiment as ``augbench tune`` resolved it (where the source kept it);
- ``estimate.json``: its saved dry-run estimate (``augbench tune --dry-run --save``), where there is one.

Plain ``augbench train`` records (no experiment) go to ``records/records.jsonl``. ``--from leaderboard/records``
reads the folder back (``sources.FolderSource``), alone or beside new runs: a published map is extended by
building from its records plus the new experiment's folder, and the experiment folders themselves can be
deleted once published.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

import yaml

from augbench.leaderboard.aggregate import Leaderboard
from augbench.leaderboard.sources import Loaded
from augbench.run_folder import ESTIMATE_FILE, EXPERIMENT_FILE, RECORDS_FILE

RECORDS_DIR = "records"


def folder_name(experiment: str) -> str:
    """The folder of an experiment's records: its name where that is a plain file name (as ``augbench tune``
    requires), else the name with every other character replaced, so a record's text never reaches outside
    records/ (a W&B run may name anything)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", experiment)
    return name if name.strip(".") else name.replace(".", "_")


def _jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(record, sort_keys=False, default=str) + "\n" for record in records)


def render_records(board: Leaderboard) -> dict[str, str]:
    """Path under records/ -> text: each experiment's records, definition and estimate."""
    return records_files(board.loaded)


def records_files(loaded: Loaded) -> dict[str, str]:
    """Path under records/ -> text for the records ``loaded`` holds (a build's, or records recovered from a page)."""
    by_experiment: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in [*loaded.records, *loaded.others]:
        by_experiment[str(record.get("experiment") or "")].append(record)
    files = {}
    for name, records in by_experiment.items():
        folder = f"{folder_name(name)}/" if name else ""
        files[folder + RECORDS_FILE] = _jsonl(records)
        if name and name in loaded.experiments:
            files[folder + EXPERIMENT_FILE] = yaml.safe_dump(loaded.experiments[name], sort_keys=False)
        if name and name in loaded.estimates:
            files[folder + ESTIMATE_FILE] = json.dumps(loaded.estimates[name], indent=2, default=str) + "\n"
    return files
