"""Where result records come from: an experiment folder, an Optuna storage, or a W&B project.

A folder may also be a published leaderboard's ``records/``: every record the build read, one JSON object
per line (``records.jsonl``), beside each experiment's resolved definition and saved estimate, so a
leaderboard can be rebuilt, and extended with new runs, from what it publishes.

Each source is one small class in ``SOURCES``; ``load_records`` asks each in
turn whether it recognises the ``--from`` text. Only records that belong on
the leaderboard come back: ``phase == "final"`` records of a tuned
experiment, and plain ``augbench train`` records (no ``phase``) where the
source can hold them (folders, W&B). Search trials never do.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from augbench.errors import UsageError
from augbench.run_folder import CONFIG_FILE, ESTIMATE_FILE, EXPERIMENT_FILE, RECORDS_FILE, RESULT_FILE

REQUIRED_FIELDS = ("dataset", "model", "recipe", "method", "seed", "status")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass
class Loaded:
    """Records read from one source, each with where it came from, plus what the reader should know."""

    source: str
    kind: str
    records: list[dict[str, Any]] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: int = 0  # search trials, and plain runs where only final ones count
    others: list[dict[str, Any]] = field(default_factory=list)  # the skipped records (republished, not shown)
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> resolved definition
    experiment_files: dict[str, str] = field(default_factory=dict)  # name -> its copy in the source folder
    estimates: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> its saved dry-run estimate
    # name -> (started_at, finished_at) of every run of the experiment, search trials included (wall time)
    run_spans: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def add(self, record: Any, origin: str, *, plain_allowed: bool) -> None:
        if not isinstance(record, dict):
            raise UsageError(f"--from {self.source}: {origin}: a result record must be a JSON object")
        if record.get("experiment") and record.get("started_at") and record.get("finished_at"):
            self.run_spans.setdefault(str(record["experiment"]), []).append(
                (str(record["started_at"]), str(record["finished_at"])))
        phase = record.get("phase")
        if phase == "final" or (phase is None and plain_allowed):
            missing = [f for f in REQUIRED_FIELDS if f not in record]
            if missing:
                raise UsageError(f"--from {self.source}: {origin}: result record lacks field '{missing[0]}' "
                                 f"(every record needs {', '.join(REQUIRED_FIELDS)})")
            self.records.append(record)
            self.origins.append(origin)
        else:
            self.skipped += 1
            self.others.append(record)


def read_estimate(loaded: Loaded, path: Path) -> None:
    """Adds a saved dry-run estimate (``augbench tune --dry-run --save``); an unreadable one is a note, not an error:
    the records stand without it."""
    try:
        estimate = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        loaded.notes.append(f"{path}: not a readable estimate ({err})")
        return
    if isinstance(estimate, dict) and estimate.get("experiment"):
        loaded.estimates[str(estimate["experiment"])] = estimate


def read_jsonl(loaded: Loaded, spec: str, path: Path) -> None:
    """Adds every record of a ``records.jsonl`` file (a published leaderboard's records), one per line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"--from {spec}: {path} is not a readable records file ({err})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise UsageError(f"--from {spec}: {path} line {number} is not a JSON record ({err.msg}); accepted: "
                             f"one result record (a JSON object) per line") from None
        loaded.add(record, f"{path}:{number}", plain_allowed=True)


class FolderSource:
    """An experiment output folder (``runs/NAME``), any folder of ``augbench train`` run folders, or a published
    leaderboard's ``records/`` folder (``records.jsonl`` files)."""

    kind = "folder"
    form = ("an experiment or run folder holding result.json files (for example runs/quickstart), or a "
            "leaderboard's records folder holding records.jsonl files (for example leaderboard/records)")

    def matches(self, spec: str) -> bool:
        return Path(spec).is_dir()

    def load(self, spec: str) -> Loaded:
        root = Path(spec)
        loaded = Loaded(spec, self.kind)
        for path in sorted(root.rglob(RESULT_FILE)):
            try:
                record = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as err:
                raise UsageError(f"--from {spec}: {path} is not a readable result record ({err})") from None
            loaded.add(record, str(path), plain_allowed=True)
        for path in sorted(root.rglob(RECORDS_FILE)):
            read_jsonl(loaded, spec, path)
        for path in sorted(root.rglob(EXPERIMENT_FILE)):
            try:
                definition = yaml.safe_load(path.read_text())
            except (OSError, yaml.YAMLError) as err:
                raise UsageError(f"--from {spec}: {path} is not a readable experiment copy ({err})") from None
            if isinstance(definition, dict) and definition.get("name"):
                loaded.experiments[str(definition["name"])] = definition
                loaded.experiment_files[str(definition["name"])] = str(path)
        for path in sorted(root.rglob(ESTIMATE_FILE)):
            read_estimate(loaded, path)
        # A run folder with a config but no result is a run that has not finished (or died): say so.
        unfinished = sorted(str(p.parent) for p in root.rglob(CONFIG_FILE) if not (p.parent / RESULT_FILE).exists())
        if unfinished:
            loaded.notes.append(f"{len(unfinished)} run folder(s) without a result (unfinished or interrupted): "
                                + ", ".join(unfinished[:10]) + (" ..." if len(unfinished) > 10 else ""))
        return loaded


class OptunaStorageSource:
    """The Optuna storage of a tuned experiment: a journal file (``runs/NAME/optuna.journal``) or an RDB URL.

    Read through ``augbench.tune.storage``, which knows its layout: every final run's record is the user
    attribute ``record`` of a trial in a study whose ``phase`` is ``final``. Failed final runs that left a
    record are read too, so the leaderboard can say why a cell is incomplete.
    """

    kind = "optuna"
    form = ("an Optuna storage: a journal file (runs/NAME/optuna.journal) or a URL (postgresql://USER@HOST/DB, "
            "sqlite:///PATH)")

    def matches(self, spec: str) -> bool:
        return bool(_URL.match(spec)) or Path(spec).is_file()

    def _open(self, spec: str):
        from augbench.tune.storage import open_storage  # lazy: optuna loads only for a storage source

        if spec.startswith("sqlite:///") and not Path(spec[len("sqlite:///"):]).is_file():
            # Optuna would create an empty database for a missing file; a typo must not write anything.
            raise UsageError(f"--from {spec}: no SQLite database at {spec[len('sqlite:///'):]}")
        if not _URL.match(spec):
            with open(spec, "rb") as f:
                if f.read(16) == b"SQLite format 3\x00":
                    spec = f"sqlite:///{spec}"
        return open_storage(spec, must_exist=True, flag="--from")

    def load(self, spec: str) -> Loaded:
        # lazy: optuna loads only for a storage source
        from augbench.tune.storage import KIND_EXPERIMENT, all_records, redact_url, study_summaries

        shown = redact_url(spec)
        loaded = Loaded(shown, self.kind)
        try:
            storage = self._open(spec)
            studies = list(study_summaries(storage).values())
            records = all_records(storage, phase="final")
            searched = all_records(storage, phase="search")
        except UsageError:
            raise  # names --from already
        except Exception as err:  # any driver, file or format error: the --from value is what is wrong
            first_line = str(err).splitlines()[0] if str(err) else ""
            raise UsageError(f"--from {shown}: cannot read this Optuna storage ({type(err).__name__}: "
                             f"{first_line})") from None
        for study in studies:
            if study.user_attrs.get("kind") == KIND_EXPERIMENT and isinstance(study.user_attrs.get("experiment"),
                                                                               dict):
                loaded.experiments[study.study_name] = study.user_attrs["experiment"]
        if not _URL.match(spec):
            # tune writes its resolved experiment beside the default journal (OUT/experiment.yaml).
            copy = Path(spec).parent / EXPERIMENT_FILE
            try:
                name = (yaml.safe_load(copy.read_text()) or {}).get("name") if copy.is_file() else None
            except (OSError, yaml.YAMLError, AttributeError):
                name = None  # only a convenience for the provenance; the records stand without it
            if name in loaded.experiments:
                loaded.experiment_files[name] = str(copy)
            if (Path(spec).parent / ESTIMATE_FILE).is_file():
                read_estimate(loaded, Path(spec).parent / ESTIMATE_FILE)
        for record in records:
            origin = f"study {record.get('experiment')}/{record.get('cell')}/final, {record.get('slot', '?')}"
            loaded.add(record, origin, plain_allowed=False)
        for record in searched:
            loaded.add(record, "search trial", plain_allowed=False)  # counted for the wall time, then skipped
        return loaded


class WandbSource:
    """A Weights & Biases project, ``wandb:ENTITY/PROJECT``; each run's summary is its record (online only)."""

    kind = "wandb"
    form = "a W&B project as wandb:ENTITY/PROJECT (online; needs `wandb login`)"
    prefix = "wandb:"

    def matches(self, spec: str) -> bool:
        return spec.startswith(self.prefix)

    def load(self, spec: str) -> Loaded:
        path = spec[len(self.prefix):].strip("/")
        if not re.fullmatch(r"[^/\s]+/[^/\s]+", path):
            raise UsageError(f"--from {spec}: expected wandb:ENTITY/PROJECT")
        mode = os.environ.get("WANDB_MODE", "").lower()
        if mode in ("offline", "disabled", "dryrun"):
            raise UsageError(f"--from {spec}: W&B is {mode} (WANDB_MODE={mode}); reading a project needs W&B "
                             f"online: unset WANDB_MODE, run `wandb login`, or build from the experiment folder "
                             f"or Optuna storage instead")
        import wandb  # lazy: wandb takes seconds to load, and only a wandb: source needs it

        loaded = Loaded(spec, self.kind)
        try:
            api = wandb.Api(timeout=30)
            for run in api.runs(path):
                summary = getattr(run.summary, "_json_dict", None) or dict(run.summary)
                loaded.add(json.loads(json.dumps(summary, default=str)), f"W&B run {run.id}", plain_allowed=True)
        except UsageError:
            raise
        except Exception as err:  # not logged in, offline, no such project: all mean this --from cannot be read
            raise UsageError(f"--from {spec}: cannot read the W&B project ({type(err).__name__}: "
                             f"{str(err).splitlines()[0] if str(err) else ''}); it needs `wandb login` and "
                             f"network access") from None
        return loaded


# Order matters: the W&B prefix and URLs are recognised before paths on disk.
SOURCES = (WandbSource(), OptunaStorageSource(), FolderSource())


def merge(parts: list[Loaded]) -> Loaded:
    """The records of several sources side by side (the finished parts of a map split into experiment files,
    say). A record read twice counts once: the same origin given twice, or the same record from two origins (a
    part's run folder and the leaderboard's ``records/`` that an earlier build of the same command copied it
    into), so running a build command again gives the same leaderboard."""
    merged = Loaded(", ".join(p.source for p in parts), ", ".join(dict.fromkeys(p.kind for p in parts)))
    seen = set()  # each record's content: one origin read twice gives the same content too
    for part in parts:
        for record, origin in zip(part.records, part.origins):
            content = json.dumps(record, sort_keys=True, default=str)
            if content not in seen:
                seen.add(content)
                merged.records.append(record)
                merged.origins.append(origin)
        merged.notes += part.notes
        merged.skipped += part.skipped
        merged.others += [r for r in part.others if r not in merged.others]
        merged.experiments.update(part.experiments)
        merged.experiment_files.update(part.experiment_files)
        merged.estimates.update(part.estimates)
        for name, spans in part.run_spans.items():
            known = merged.run_spans.setdefault(name, [])
            known += [span for span in spans if span not in known]
    return merged


def load_records(spec: str) -> Loaded:
    """Reads the leaderboard's records from ``spec``; UsageError naming ``--from`` when it is not a source."""
    for source in SOURCES:
        if source.matches(spec):
            loaded = source.load(spec)
            break
    else:
        accepted = "; ".join(s.form for s in SOURCES)
        raise UsageError(f"--from {spec}: not an existing folder, an Optuna storage or a W&B project; "
                         f"accepted: {accepted}")
    if not loaded.records:
        ignored = f" ({loaded.skipped} search or non-final record(s) ignored)" if loaded.skipped else ""
        raise UsageError(f"--from {spec}: found no final result records{ignored}; accepted: records with "
                         f"phase 'final' (augbench tune) or plain augbench train records")
    return loaded
