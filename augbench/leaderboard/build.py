"""``augbench leaderboard build``: records from a source -> README.md, index.html, results.csv, entries/, records/.

Everything is rendered into a temporary folder next to ``--out`` first;
only when every file exists are they moved in (each by an atomic rename), so
a failure never leaves half a leaderboard. Entries of cells that no longer
exist are removed with the old ``entries/`` folder, and records of
experiments no longer built from with the old ``records/``. Building from
``--out``'s own ``records/`` works: every source is read before anything is
written.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from augbench.errors import UsageError
from augbench.leaderboard.aggregate import Leaderboard, aggregate
from augbench.leaderboard.render_csv import render_csv
from augbench.leaderboard.render_entries import render_entries
from augbench.leaderboard.render_html import render_html
from augbench.leaderboard.render_markdown import render_markdown
from augbench.leaderboard.render_records import RECORDS_DIR, render_records
from augbench.leaderboard.sources import load_records, merge

# What the leaderboard folder holds: file name -> renderer. Adding an output is adding a line.
PAGES = {
    "README.md": render_markdown,
    "index.html": render_html,
    "results.csv": render_csv,
}
ENTRIES_DIR = "entries"
# The leaderboard's folders: name -> renderer of {path inside it: text}.
FOLDERS = {
    ENTRIES_DIR: render_entries,
    RECORDS_DIR: render_records,
}


@dataclass
class BuildResult:
    out: Path
    board: Leaderboard
    files: list[str]


def _write_tree(board: Leaderboard, folder: Path) -> list[str]:
    written = []
    for folder_name, render in FOLDERS.items():
        (folder / folder_name).mkdir()
        for name, text in render(board).items():
            path = folder / folder_name / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(f"{folder_name}/{name}")
    for name, render in PAGES.items():
        (folder / name).write_text(render(board), encoding="utf-8")
        written.append(name)
    return written


def _move_in(staging: Path, out: Path) -> None:
    """Replaces the leaderboard files in ``out`` by those in ``staging``; other files in ``out`` stay."""
    retired = Path(tempfile.mkdtemp(prefix=".leaderboard-old-", dir=out))  # kept if a move fails
    for name in FOLDERS:
        if (out / name).exists():
            (out / name).rename(retired / name)
        (staging / name).rename(out / name)
    for name in PAGES:
        os.replace(staging / name, out / name)
    shutil.rmtree(retired, ignore_errors=True)


def read_notes(path: str | Path | None) -> str:
    """The Markdown of ``--notes FILE`` (how the protocol was chosen, say), or "" without one."""
    if path is None:
        return ""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"--notes {path}: cannot read it ({getattr(err, 'strerror', None) or err}); "
                         "accepted: a UTF-8 Markdown file") from None
    if not text.strip():
        raise UsageError(f"--notes {path}: the file is empty; accepted: a UTF-8 Markdown file with the notes")
    return text.strip()


def build(source: str | list[str], out: str | Path, *, metric: str = "test_acc", command: list[str] | None = None,
          notes: str | Path | None = None) -> BuildResult:
    """Reads records from ``source`` (one, or a list whose records are pooled) and writes the leaderboard into
    ``out``; UsageError on bad input.

    ``command`` is the command line that asked for this build, recorded in the pages (with the source as the
    source reports itself, so a storage password never reaches a published page). ``notes``: a Markdown file
    the pages show under their introduction (README.md as it is, index.html as preformatted text).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    notes_text = read_notes(notes)
    specs = [source] if isinstance(source, str) else list(source)
    parts = [load_records(spec) for spec in specs]
    loaded = merge(parts)
    reported = {spec: part.source for spec, part in zip(specs, parts)}
    shown = None if command is None else shlex.join(reported.get(arg, arg) for arg in command)
    board = aggregate(loaded, metric=metric, build_command=shown)
    board.notes = notes_text
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".leaderboard-build-", dir=out))
    except OSError as err:
        raise UsageError(f"--out {out}: cannot write there ({err.strerror})") from None
    try:
        files = _write_tree(board, staging)
        _move_in(staging, out)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BuildResult(out, board, files)
