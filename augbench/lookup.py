"""Named YAML files (recipes, protocols), found in a checkout and in the installed package.

A name is looked up first in the project folder under the working folder
(``recipes/augment``, ``recipes/protocols``) and then in the copy installed
with the package (a link inside ``augbench/`` that points at the same folder,
listed in ``pyproject.toml``'s package data), so the same names work from a
checkout and from an installed wheel.
"""

from __future__ import annotations

from pathlib import Path

YAML_SUFFIXES = (".yaml", ".yml")


def search_folders(*candidates: Path) -> list[Path]:
    """The candidates that exist, in order, each folder once (a link and its target count once)."""
    seen, folders = set(), []
    for folder in candidates:
        if folder.is_dir() and folder.resolve() not in seen:
            seen.add(folder.resolve())
            folders.append(folder)
    return folders


def files_by_name(folders: list[Path]) -> dict[str, Path]:
    """Name (file stem) -> YAML file over ``folders``, the first folder winning, sorted by name."""
    found: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.suffix in YAML_SUFFIXES and path.stem not in found:
                found[path.stem] = path
    return dict(sorted(found.items()))


def is_path(name_or_path: str) -> bool:
    """Whether a command-line value names a file (has a YAML suffix or a folder) rather than a name."""
    path = Path(name_or_path)
    return path.suffix in YAML_SUFFIXES or len(path.parts) > 1
