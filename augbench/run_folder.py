"""What a run folder holds, and the files an experiment folder holds beside its runs.

``augbench train`` writes the first four into ``--out``; ``augbench tune``
writes one run folder per slot and the resolved experiment (and, with
``--dry-run --save``, its cost estimate) into the experiment folder. The
engine, the tuner and the leaderboard all name these files from here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.json"  # the run's resolved configuration
METRICS_FILE = "metrics.jsonl"  # one line per finished epoch
CHECKPOINT_FILE = "checkpoint.pt"  # the latest epoch's state, for resuming
RESULT_FILE = "result.json"  # the result record
EXPERIMENT_FILE = "experiment.yaml"  # the resolved experiment, in an experiment folder
ESTIMATE_FILE = "estimate.json"  # its saved dry-run cost estimate
RECORDS_FILE = "records.jsonl"  # result records, one JSON object per line (a published leaderboard's records/)


def write_json_atomic(path: Path, data: Any) -> None:
    """Writes JSON to ``path`` via a temporary file and rename, so a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    with open(path) as f:
        return json.load(f)
